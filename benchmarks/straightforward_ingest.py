"""The webhook receiver a user would write first: the comparison point of ingest.py.

FastAPI; the key checked from HTTP Basic or Bearer credentials; the body read with
``json.loads``; one SQLAlchemy ``INSERT`` per event into a SQLite table, all of a
batch in one transaction; 200 once it is committed. It does less than seqscore
(no recipient hashing, no normalisation, no de-duplication, no quarantine), which
only flatters it. Not part of the product; run by ingest.py::

    python benchmarks/straightforward_ingest.py --db FILE --key KEY --port 8001
"""

from __future__ import annotations

import argparse
import base64
import json

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, HTTPException, Request

metadata = sa.MetaData()
events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sg_event_id", sa.String),
    sa.Column("sg_message_id", sa.String),
    sa.Column("event", sa.String),
    sa.Column("email", sa.String),
    sa.Column("timestamp", sa.Integer),
    sa.Column("payload", sa.Text),
)


def create_app(db: str, api_key: str) -> FastAPI:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    metadata.create_all(engine)
    app = FastAPI()

    def authorized(request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return value == api_key
        if scheme.lower() == "basic":
            return base64.b64decode(value).decode().partition(":")[2] == api_key
        return False

    @app.post("/api/v1/events/sendgrid")
    async def receive(request: Request) -> dict[str, int]:
        if not authorized(request):
            raise HTTPException(401)
        batch = json.loads(await request.body())
        with engine.begin() as conn:
            for item in batch:
                conn.execute(events.insert().values(
                    sg_event_id=item.get("sg_event_id"), sg_message_id=item.get("sg_message_id"),
                    event=item.get("event"), email=item.get("email"),
                    timestamp=int(item.get("timestamp", 0)), payload=json.dumps(item)))
        return {"accepted": len(batch), "rejected": 0, "duplicates": 0}

    @app.get("/api/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_app(args.db, args.key), host=args.host, port=args.port,
                log_level="warning", loop="uvloop", http="httptools", access_log=False)


if __name__ == "__main__":
    main()
