-- Message chunks are mostly base64 or already compressed: store them out of line without
-- trying to compress them (pglz on half a megabyte of incompressible data only costs time).
ALTER TABLE "content_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;
