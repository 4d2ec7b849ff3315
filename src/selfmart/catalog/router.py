"""HTTP routes of the catalog: products, categories, tags, images, store listing, import,
bulk edits. Each route parses, names its permission, calls one service function."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from selfmart.catalog import bulk, importer, tasks
from selfmart.catalog import images as media
from selfmart.catalog import listing as listings
from selfmart.catalog import service as catalog
from selfmart.catalog.dependencies import ProductDep, SettingsDep, StorageDep
from selfmart.catalog.exceptions import too_large
from selfmart.catalog.schemas import (
    BulkApplyRequest,
    BulkPreview,
    BulkPreviewRequest,
    BulkResult,
    CategoryCreate,
    CategoryMove,
    CategoryNode,
    CategoryRead,
    CategoryReorder,
    CategoryUpdate,
    ImageRead,
    ImportMode,
    ImportReport,
    ImportStarted,
    ListingRead,
    ListingUpsert,
    ProductCreate,
    ProductFilter,
    ProductRead,
    ProductStatus,
    ProductUpdate,
    SortKey,
    StockState,
    TagCreate,
    TagRead,
    TagUpdate,
)
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit.ids import INT64_MAX, QueryId
from selfmart.kit.ids import Id as BodyId
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.tabular import XLSX_MEDIA_TYPE, Encoding

router = APIRouter(tags=["catalog"])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Pages = Annotated[PageParams, Depends(page_params)]
Reader = Annotated[Actor, require(Perm.PRODUCT_READ)]
Writer = Annotated[Actor, require(Perm.PRODUCT_WRITE)]
Importer = Annotated[Actor, require(Perm.PRODUCT_IMPORT)]


def product_filter(
    q: Annotated[str | None, Query(max_length=100)] = None,
    category_id: QueryId = None,
    tag_id: QueryId = None,
    status: ProductStatus | None = None,
    brand: Annotated[str | None, Query(max_length=100)] = None,
    store_id: QueryId = None,
    stock_state: StockState | None = None,
) -> ProductFilter:
    return ProductFilter(
        q=q or None,
        category_id=category_id,
        tag_id=tag_id,
        status=status,
        brand=brand or None,
        store_id=store_id,
        stock_state=stock_state,
    )


Filter = Annotated[ProductFilter, Depends(product_filter)]


async def read_upload(upload: UploadFile, limit: int, what: str) -> bytes:
    """The uploaded bytes; 413 naming the field once more than `limit` bytes arrive."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large("file", f"The {what} is larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _attachment(filename: str) -> dict[str, str]:
    return {"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


# --- products -------------------------------------------------------------------------------


@router.get(
    "/products",
    response_model=Page[ProductRead],
    responses=error_responses(401, 403, 404),
    operation_id="list_products",
)
async def list_products(
    session: SessionDep,
    actor: Reader,
    settings: SettingsDep,
    f: Filter,
    params: Pages,
    sort: SortKey = "-updated_at",
) -> Page[ProductRead]:
    items, total = await catalog.search_products(session, f, sort, params, actor=actor)
    return Page(
        items=[catalog.product_read(p, settings) for p in items],
        total=total,
        page=params.page,
        size=params.size,
    )


@router.get(
    "/products/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}, **error_responses(401, 403, 404)},
    operation_id="export_products",
)
async def export_products(
    session: SessionDep, actor: Reader, f: Filter, sort: SortKey = "-updated_at"
) -> StreamingResponse:
    spool = await catalog.export_products(session, f, sort, actor=actor)
    return StreamingResponse(
        spool.stream(), media_type=XLSX_MEDIA_TYPE, headers=_attachment("products.xlsx")
    )


@router.get(
    "/products/by-barcode",
    response_model=ProductRead,
    responses=error_responses(401, 403, 404),
    operation_id="product_by_barcode",
)
async def product_by_barcode(
    session: SessionDep,
    actor: Reader,
    settings: SettingsDep,
    code: Annotated[str, Query(min_length=1, max_length=32)],
) -> ProductRead:
    product = await catalog.get_by_barcode(session, code)
    if product is None:
        from selfmart.catalog.exceptions import ProductNotFound

        raise ProductNotFound("No product has this barcode", field="code")
    return catalog.product_read(product, settings)


@router.get(
    "/products/import/template",
    response_class=Response,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}, "text/csv": {}}},
        **error_responses(401, 403),
    },
    operation_id="import_template",
)
async def import_template(actor: Importer, format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    data = importer.template(format)
    media_type = XLSX_MEDIA_TYPE if format == "xlsx" else "text/csv; charset=utf-8"
    return Response(data, media_type=media_type, headers=_attachment(f"商品导入模板.{format}"))


@router.post(
    "/products/import",
    response_model=ImportReport | ImportStarted,
    responses={
        202: {"model": ImportStarted, "description": "a large file: imported by a job"},
        **error_responses(401, 403, 413, 415, 422),
    },
    operation_id="import_products",
)
async def import_products(
    session: SessionDep,
    actor: Importer,
    settings: SettingsDep,
    storage: StorageDep,
    response: Response,
    file: Annotated[UploadFile, File(description="xlsx or csv (UTF-8 or GBK)")],
    mode: Annotated[ImportMode, Form()] = "all_or_nothing",
    encoding: Annotated[Encoding, Form(description="csv only")] = "auto",
    create_categories: Annotated[bool, Form()] = False,
    create_tags: Annotated[bool, Form()] = False,
    store_ids: Annotated[
        list[BodyId] | None,
        Form(description="stores to list new products in; omitted: all of the user's stores"),
    ] = None,
    list_in_stores: Annotated[
        bool, Form(description="false: new products are listed in no store")
    ] = True,
) -> ImportReport | ImportStarted:
    """Small files are imported at once (200, the report); larger ones start a job (202)."""
    stores = (
        await listings.target_stores(session, actor, store_ids, field="store_ids")
        if list_in_stores
        else []
    )
    data = await read_upload(file, settings.import_max_bytes, "file")
    options = importer.ImportOptions(
        mode=mode,
        encoding=encoding,
        create_categories=create_categories,
        create_tags=create_tags,
        max_rows=settings.import_max_rows,
        store_ids=stores,
    )
    result = await tasks.submit_import(
        session,
        data,
        file.filename,
        options,
        actor=actor,
        storage=storage,
        sync_max_rows=settings.import_sync_max_rows,
    )
    if isinstance(result, ImportStarted):
        response.status_code = status.HTTP_202_ACCEPTED
    return result


@router.post(
    "/products/bulk/preview",
    response_model=BulkPreview,
    responses=error_responses(401, 403, 404, 422),
    operation_id="bulk_preview",
)
async def bulk_preview(session: SessionDep, actor: Writer, body: BulkPreviewRequest) -> BulkPreview:
    return await bulk.preview(session, body, actor=actor)


@router.post(
    "/products/bulk/apply",
    response_model=BulkResult,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="bulk_apply",
)
async def bulk_apply(session: SessionDep, actor: Writer, body: BulkApplyRequest) -> BulkResult:
    return await bulk.apply(session, body, actor=actor)


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="create_product",
)
async def create_product(
    session: SessionDep, actor: Writer, settings: SettingsDep, body: ProductCreate
) -> ProductRead:
    product = await catalog.create_product(session, body, actor=actor)
    return catalog.product_read(product, settings)


@router.get(
    "/products/{product_id}",
    response_model=ProductRead,
    responses=error_responses(401, 403, 404),
    operation_id="get_product",
)
async def get_product(product: ProductDep, actor: Reader, settings: SettingsDep) -> ProductRead:
    return catalog.product_read(product, settings)


@router.patch(
    "/products/{product_id}",
    response_model=ProductRead,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="update_product",
)
async def update_product(
    session: SessionDep,
    product: ProductDep,
    actor: Writer,
    settings: SettingsDep,
    body: ProductUpdate,
) -> ProductRead:
    product = await catalog.update_product(session, product, body, actor=actor)
    return catalog.product_read(product, settings)


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409),
    operation_id="delete_product",
)
async def delete_product(
    session: SessionDep, product: ProductDep, actor: Writer, storage: StorageDep
) -> None:
    await catalog.delete_product(session, product, actor=actor, storage=storage)


@router.get(
    "/products/{product_id}/stores",
    response_model=list[ListingRead],
    responses=error_responses(401, 403, 404),
    operation_id="product_listings",
)
async def product_listings(
    session: SessionDep, product: ProductDep, actor: Reader
) -> list[ListingRead]:
    return await catalog.product_listings(session, product, actor=actor)


# --- images ---------------------------------------------------------------------------------


@router.post(
    "/products/{product_id}/images",
    response_model=ImageRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422),
    operation_id="upload_image",
)
async def upload_image(
    session: SessionDep,
    product: ProductDep,
    actor: Writer,
    settings: SettingsDep,
    storage: StorageDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
) -> ImageRead:
    data = await read_upload(file, settings.image_max_bytes, "image")
    image = await catalog.add_image(
        session, product, data, actor=actor, settings=settings, storage=storage
    )
    return catalog.image_read(image, settings)


@router.delete(
    "/products/{product_id}/images/{image_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    operation_id="delete_image",
)
async def delete_image(
    session: SessionDep, product: ProductDep, image_id: Id, actor: Writer, storage: StorageDep
) -> None:
    await catalog.delete_image(session, product, image_id, actor=actor, storage=storage)


@router.get(
    "/products/{product_id}/images/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **error_responses(401, 403, 404)},
    operation_id="image_file",
)
async def image_file(
    session: SessionDep,
    product_id: Id,
    image_id: Id,
    actor: Reader,
    storage: StorageDep,
    variant: Literal["full", "thumb"] = "full",
) -> Response:
    data, content_type = await catalog.image_bytes(
        session, product_id, image_id, thumb=variant == "thumb", storage=storage
    )
    return Response(
        data, media_type=content_type, headers={"cache-control": "private, max-age=3600"}
    )


@router.get(
    "/media/{key:path}",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **error_responses(404)},
    operation_id="signed_media",
)
async def signed_media(
    key: Annotated[str, Path(max_length=256)],
    exp: Annotated[int, Query(ge=0, le=INT64_MAX)],
    sig: Annotated[str, Query(max_length=64)],
    settings: SettingsDep,
    storage: StorageDep,
) -> Response:
    """Signed, time-limited image links (public: the signature is the credential)."""
    media.check_signature(settings, key, exp, sig)
    data, content_type = await catalog.read_media(key, storage)
    return Response(
        data, media_type=content_type, headers={"cache-control": "private, max-age=3600"}
    )


# --- categories -----------------------------------------------------------------------------


@router.get(
    "/categories",
    response_model=list[CategoryNode],
    responses=error_responses(401, 403),
    operation_id="category_tree",
)
async def category_tree(session: SessionDep, actor: Reader) -> list[CategoryNode]:
    return await catalog.category_tree(session)


@router.post(
    "/categories",
    response_model=CategoryRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="create_category",
)
async def create_category(session: SessionDep, actor: Writer, body: CategoryCreate) -> CategoryRead:
    return CategoryRead.model_validate(await catalog.create_category(session, body, actor=actor))


@router.post(
    "/categories/reorder",
    response_model=list[CategoryRead],
    responses=error_responses(401, 403, 422),
    operation_id="reorder_categories",
)
async def reorder_categories(
    session: SessionDep, actor: Writer, body: CategoryReorder
) -> list[CategoryRead]:
    cats = await catalog.reorder_categories(session, body, actor=actor)
    return [CategoryRead.model_validate(c) for c in cats]


@router.patch(
    "/categories/{category_id}",
    response_model=CategoryRead,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="update_category",
)
async def update_category(
    session: SessionDep, category_id: Id, actor: Writer, body: CategoryUpdate
) -> CategoryRead:
    category = await catalog.get_category(session, category_id)
    return CategoryRead.model_validate(
        await catalog.update_category(session, category, body, actor=actor)
    )


@router.post(
    "/categories/{category_id}/move",
    response_model=CategoryRead,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="move_category",
)
async def move_category(
    session: SessionDep, category_id: Id, actor: Writer, body: CategoryMove
) -> CategoryRead:
    category = await catalog.get_category(session, category_id)
    return CategoryRead.model_validate(
        await catalog.move_category(session, category, body, actor=actor)
    )


@router.delete(
    "/categories/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409),
    operation_id="delete_category",
)
async def delete_category(session: SessionDep, category_id: Id, actor: Writer) -> None:
    category = await catalog.get_category(session, category_id)
    await catalog.delete_category(session, category, actor=actor)


# --- tags -----------------------------------------------------------------------------------


@router.get(
    "/tags",
    response_model=list[TagRead],
    responses=error_responses(401, 403),
    operation_id="list_tags",
)
async def list_tags(session: SessionDep, actor: Reader) -> list[TagRead]:
    return [TagRead.model_validate(t) for t in await catalog.list_tags(session)]


@router.post(
    "/tags",
    response_model=TagRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 422),
    operation_id="create_tag",
)
async def create_tag(session: SessionDep, actor: Writer, body: TagCreate) -> TagRead:
    return TagRead.model_validate(await catalog.create_tag(session, body, actor=actor))


@router.patch(
    "/tags/{tag_id}",
    response_model=TagRead,
    responses=error_responses(401, 403, 404, 409, 422),
    operation_id="update_tag",
)
async def update_tag(session: SessionDep, tag_id: Id, actor: Writer, body: TagUpdate) -> TagRead:
    tag = await catalog.get_tag(session, tag_id)
    return TagRead.model_validate(await catalog.update_tag(session, tag, body, actor=actor))


@router.delete(
    "/tags/{tag_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    operation_id="delete_tag",
)
async def delete_tag(session: SessionDep, tag_id: Id, actor: Writer) -> None:
    tag = await catalog.get_tag(session, tag_id)
    await catalog.delete_tag(session, tag, actor=actor)


# --- per-store listing ----------------------------------------------------------------------


@router.get(
    "/stores/{store_id}/products",
    response_model=Page[ListingRead],
    responses=error_responses(401, 403, 404),
    operation_id="store_listings",
)
async def store_listings(
    session: SessionDep, store_id: Id, actor: Reader, params: Pages
) -> Page[ListingRead]:
    items, total = await catalog.store_listings(session, store_id, params, actor=actor)
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.put(
    "/stores/{store_id}/products/{product_id}",
    response_model=ListingRead,
    responses=error_responses(401, 403, 404, 422),
    operation_id="upsert_listing",
)
async def upsert_listing(
    session: SessionDep, store_id: Id, product_id: Id, actor: Writer, body: ListingUpsert
) -> ListingRead:
    return await catalog.upsert_listing(session, store_id, product_id, body, actor=actor)


@router.delete(
    "/stores/{store_id}/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    operation_id="delete_listing",
)
async def delete_listing(session: SessionDep, store_id: Id, product_id: Id, actor: Writer) -> None:
    await catalog.delete_listing(session, store_id, product_id, actor=actor)
