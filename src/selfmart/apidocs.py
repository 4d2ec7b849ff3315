"""The interactive API docs (/api/docs), served entirely by the app itself.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; our
content-security policy (`script-src 'self'`) rightly blocks both, so the page was blank. Here
the Swagger UI files come from the swagger-ui-bundle-v2 package and the page starts them with a
script of our own, so the policy stays as strict as for the console.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from selfmart.errors import NotFound

DOCS_URL = "/api/docs"
ASSETS_URL = f"{DOCS_URL}/assets"

#: The only files of the bundle the page needs (nothing else of the package is reachable).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _page(title: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_URL}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{DOCS_URL}/start.js"></script>
</body>
</html>
"""


def _start_script(openapi_url: str) -> str:
    # validatorUrl null: the default asks a third-party validator for a badge image.
    return f"""window.ui = SwaggerUIBundle({{
  url: {openapi_url!r},
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
}});
"""


def router(title: str, openapi_url: str) -> APIRouter:
    """The docs page, its start script and the Swagger UI files (none in the OpenAPI doc)."""
    docs = APIRouter(include_in_schema=False)
    page = _page(f"{title} API")
    script = _start_script(openapi_url)
    cache = {"cache-control": "public, max-age=86400"}

    @docs.get(DOCS_URL)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"cache-control": "no-cache"})

    @docs.get(f"{DOCS_URL}/start.js")
    async def docs_start() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8", headers=cache)

    @docs.get(f"{ASSETS_URL}/{{name}}", response_model=None)
    def docs_asset(name: str) -> FileResponse:  # sync: runs in the threadpool
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"No docs asset {name}")
        path = Path(str(swagger_ui_path / name))
        return FileResponse(path, media_type=media_type, headers=cache)

    return docs
