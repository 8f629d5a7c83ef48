"""/api/v1/compare/predictions: the comparison table of images by runs (`deepyard.infer.predict_table`), as JSON or
as CSV.

Images are uploaded in the request (file bytes in base64, each checked against the classify limits: bytes and
pixels from the header before decoding) or picked from a dataset split by the dataset's id or name; a request
never names a path. Runs are loaded through the inference routes' model cache.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import Field

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.infer import PredictionTable, TableImage, predict_table, split_images, upload_image
from deepyard.infer.model import parse_model_ref
from deepyard.limits import NAME_MAX
from deepyard.web.api.infer import IMAGE_LIMIT, check_pixels, model_for, read_body
from deepyard.web.deps import RequestModel, SettingsDep
from deepyard.web.errors import TooLarge

MAX_RUNS = 16  # columns of one table
MAX_IMAGES = 64  # rows of one table, uploads and split images together
BODY_LIMIT = 100 * 1024**2  # bytes of one request (uploads travel in base64: 4/3 of their size)


class Upload(RequestModel):
    name: str = Field(max_length=200, description="The file's name, shown in the table.")
    data: str = Field(max_length=IMAGE_LIMIT * 4 // 3 + 4, description="The image file's bytes in base64.")


class PredictionsRequest(RequestModel):
    """Runs (the columns) and images (the rows): uploads first, then the images picked from a dataset split."""

    runs: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        min_length=1, max_length=MAX_RUNS, description="Run ids, each ID or ID@SNAPSHOT."
    )
    images: list[Upload] = Field([], max_length=MAX_IMAGES, description="Uploaded image files.")
    dataset: str | None = Field(None, max_length=NAME_MAX, description="Dataset (id or name) to pick images from.")
    split: str = Field("val", max_length=16, description="Its split: train, val or test.")
    count: int | None = Field(None, ge=1, le=MAX_IMAGES, description="The first N images (from offset); default 10.")
    offset: int = Field(0, ge=0, le=2**31)
    indices: list[int] | None = Field(None, max_length=MAX_IMAGES, description="These images of the split instead.")


class CappedRequest(Request):
    """A request whose body is read up to BODY_LIMIT bytes, else refused (413), before FastAPI parses it (FastAPI's
    documented way to give a route its own Request class, as its GzipRequest example)."""

    async def read_capped(self) -> None:
        self._body = await read_body(self, BODY_LIMIT, "request")  # what Request.body() returns from now on


class CappedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            capped_request = CappedRequest(request.scope, request.receive)
            await capped_request.read_capped()  # here: FastAPI's body parsing would make any error a 400
            return await handler(capped_request)

        return capped


router = APIRouter(prefix="/compare", tags=["inference"], route_class=CappedRoute)


@router.post("/predictions", responses={200: {"content": {"text/csv": {}}}})
def predictions(
    body: PredictionsRequest,
    settings: SettingsDep,
    format: Literal["json", "csv"] = Query("json", description="json: the table as data; csv: one line per image."),
) -> Any:
    """Each run's prediction for each image: the class and its confidence (classification), the labels above
    their thresholds (multi-label) or the values (regression), and the true target of images from a dataset
    split. JSON: `columns` (one per run, with how many labelled images it gets right) and `rows` (one per image,
    with `cells` in the order of the columns). Uploads come first, then the split's images."""
    table = _table(settings, body)
    if format == "csv":
        headers = {"Content-Disposition": 'attachment; filename="predictions.csv"'}
        return Response(table.to_csv(), media_type="text/csv; charset=utf-8", headers=headers)
    return table.to_json()


def _table(settings: Settings, body: PredictionsRequest) -> PredictionTable:
    images = [_upload(u) for u in body.images]
    if body.dataset is not None:
        images += split_images(settings, body.dataset, body.split, body.count, body.offset, body.indices)
    if len(images) > MAX_IMAGES:
        raise InvalidValueError(f"{len(images)} images is over the limit of {MAX_IMAGES} for one table")
    models = [model_for(settings, *parse_model_ref(ref)) for ref in body.runs]
    return predict_table(models, images)


def _upload(upload: Upload) -> TableImage:
    try:
        data = base64.b64decode(upload.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(f"image {upload.name!r}: data is not base64") from None
    if len(data) > IMAGE_LIMIT:
        raise TooLarge(f"image {upload.name!r} is {len(data):,} bytes, over the limit of {IMAGE_LIMIT:,}")
    check_pixels(data, f"image {upload.name!r}")
    return upload_image(upload.name, data)
