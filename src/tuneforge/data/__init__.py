"""Loading, validating, cleaning and splitting labeled text."""
