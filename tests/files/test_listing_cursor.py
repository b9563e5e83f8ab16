"""Keyset pagination of file listings: `cursor` beside `limit`/`offset`, the next page's cursor
in the `X-Next-Cursor` header, the body still the seed's array. Through the app, one transaction
(so every file shares its `created_at` and only the id orders them: the tie the cursor breaks)."""

from __future__ import annotations

from tests.fixtures.app import AsyncApi

CSV = b"name,email\nAda,ada@example.com\n"


async def walk(api: AsyncApi, path: str, *, limit: int) -> tuple[list[int], int]:
    """Every id of a listing, following cursors; and how many requests that took."""
    ids: list[int] = []
    params: dict[str, object] = {"limit": limit}
    requests = 0
    while True:
        response = await api.get(path, params=params)
        requests += 1
        assert response.status_code == 200, response.text
        page = response.json()
        assert isinstance(page, list)  # the seed's shape: an array of file objects
        ids += [file["id"] for file in page]
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return ids, requests
        params = {"limit": limit, "cursor": cursor}


class TestCursorPagination:
    async def test_cursor_pages_hold_every_file_once_newest_first(
        self, admin_client: AsyncApi
    ) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        ticket_id = (await admin_client.new_ticket(customer_id))["id"]
        uploaded = []
        for n in range(7):
            response = await admin_client.upload(
                CSV, f"f{n}.csv", customer_id=customer_id, ticket_id=ticket_id
            )
            assert response.status_code == 201, response.text
            uploaded.append(response.json()["id"])
        by_offset = (await admin_client.get(f"/files/customer/{customer_id}")).json()

        for path in (f"/files/customer/{customer_id}", f"/files/ticket/{ticket_id}"):
            ids, requests = await walk(admin_client, path, limit=3)
            assert ids == sorted(uploaded, reverse=True)
            assert ids == [file["id"] for file in by_offset]
            assert requests == 3  # 3 + 3 + 1: the last, short page carries no cursor

    async def test_a_full_last_page_ends_with_an_empty_one(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        for n in range(2):
            await admin_client.upload(CSV, f"f{n}.csv", customer_id=customer_id)
        ids, requests = await walk(admin_client, f"/files/customer/{customer_id}", limit=2)
        assert len(ids) == 2
        assert requests == 2

    async def test_a_cursor_it_did_not_make_is_a_422(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        for cursor in ("nonsense", "MjAyNi0xMi0wMVQwMDowMDowMHwx", "x" * 500, "%%%"):
            response = await admin_client.get(
                f"/files/customer/{customer_id}", params={"cursor": cursor}
            )
            assert response.status_code == 422, (cursor, response.text)
            body = response.json()
            assert set(body) == {"detail", "code"}
