"""The naive baseline for serve_load.py: FastAPI calling a Hugging Face pipeline per request.

This is what a hand-written service usually looks like: one pipeline loaded at
start, a plain `def` endpoint (FastAPI runs it in its thread pool), no batching.

    MODEL_DIR=runs/x/model uvicorn benchmarks.naive_server:app --port 8001
"""

import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

classifier = pipeline("text-classification", model=os.environ["MODEL_DIR"], truncation=True, max_length=128, device="cpu")
app = FastAPI()


class Request(BaseModel):
    texts: list[str]


@app.post("/v1/classify")
def classify(request: Request) -> dict:
    return {"results": classifier(request.texts)}


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}
