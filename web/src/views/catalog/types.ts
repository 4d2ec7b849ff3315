// Friendly names for the catalog's generated API types (kept here, next to the catalog views).
import type * as G from '@/api/generated/types.gen'

export type ProductRead = G.ProductRead
export type ProductQuery = NonNullable<G.ListProductsData['query']>
export type ProductCreate = G.ProductCreate
export type ProductUpdate = G.ProductUpdate
export type CategoryNode = G.CategoryNode
export type TagRead = G.TagRead
export type ImageRead = G.ImageRead
export type ListingRead = G.ListingRead
export type BulkPreview = G.BulkPreview
export type BulkPreviewRequest = G.BulkPreviewRequest
export type ImportReport = G.ImportReport
export type ImportStarted = G.ImportStarted
export type JobRead = G.GetJobResponse
