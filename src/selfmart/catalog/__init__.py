"""The catalog domain: products, barcodes, categories, tags, images, per-store listing."""
