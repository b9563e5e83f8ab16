"""`uvicorn app.main:app` from the repo root: the same application as `filestore serve`."""

from filestore.main import create_app

app = create_app()
