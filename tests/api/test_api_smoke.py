import datetime as dt

from starlette.testclient import TestClient

from seqscore.api.app import create_app


def test_scores_200_after_results_written(services, world):
    parent = world.account("acme")
    key = world.key(parent)
    for d in (dt.date(2026, 11, 18), dt.date(2026, 11, 19)):
        world.result(parent, d)
    client = TestClient(create_app(services))
    r = client.get("/v3/engagementquality/scores?from=2026-11-18&to=2026-11-20",
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert [e["date"] for e in r.json()["result"]] == ["2026-11-18", "2026-11-19"]
    assert r.headers["X-RateLimit-Limit"] == "600"
