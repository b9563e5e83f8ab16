"""Concurrent deletes of one file on a live server: exactly one wins."""

from __future__ import annotations

import threading

import httpx

from tests.fixtures.live import Api

CSV = b"full_name,email\nJane Roe,jane@example.com\n"


def delete_at_once(admin: Api, path: str, clients: int) -> list[httpx.Response]:
    """`clients` DELETEs of `path`, each on a connection of its own, released together."""
    barrier = threading.Barrier(clients)
    answers: list[httpx.Response] = []

    def delete() -> None:
        own = Api(admin.base_url, admin.token)
        barrier.wait()
        answers.append(own.delete(path))

    threads = [threading.Thread(target=delete) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


class TestConcurrentDeletes:
    def test_exactly_one_204_others_404(self, admin: Api, customer_id: int) -> None:
        for round_ in range(3):
            uploaded = admin.upload(CSV, f"race-{round_}.csv", customer_id=customer_id)
            assert uploaded.status_code == 201, uploaded.text
            file_id = uploaded.json()["id"]
            answers = delete_at_once(admin, f"/files/{file_id}", 4)
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [204, 404, 404, 404], [a.text for a in answers]
            for answer in answers:
                if answer.status_code == 404:
                    assert answer.json()["code"] == "file_not_found"
            assert admin.get(f"/files/{file_id}").status_code == 404
