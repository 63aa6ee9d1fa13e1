"""Entity extraction (token classification): BIO tags over word pieces, spans with character offsets."""
