-- Schema of Chainlit's official data layer (ChainlitDataLayer, asyncpg), as
-- every release from 2.0 to 2.12 reads and writes it: the lines differ only
-- in which of these columns they use ("Thread"."updatedAt" from 2.7.0,
-- "Step"."createdAt" from 2.9.5), never in a table, a type or a label.
--
-- Chainlit creates no tables itself. The columns are the ones its SQL reads
-- and writes (chainlit/data/chainlit_data_layer.py); names, types, defaults,
-- constraint and index names follow upstream's Prisma schema
-- (Chainlit/chainlit-datalayer), so that this file works both on an empty
-- database and on one that Prisma already created, and changes nothing there.
-- gen_random_uuid() is built into PostgreSQL 13 and later.
--
-- Applied in one transaction by the chainlit_schema module, which records it
-- in chainlit_schema_migrations. Every statement is idempotent on its own too.
-- readable by chainlit >= 2.0.601

DO $$
BEGIN
    CREATE TYPE "StepType" AS ENUM (
        'assistant_message', 'embedding', 'llm', 'retrieval', 'rerank',
        'run', 'system_message', 'tool', 'undefined', 'user_message'
    );
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

-- A "StepType" made elsewhere may lack labels: add any that are missing.
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'assistant_message';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'embedding';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'llm';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'retrieval';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'rerank';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'run';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'system_message';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'tool';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'undefined';
ALTER TYPE "StepType" ADD VALUE IF NOT EXISTS 'user_message';

CREATE TABLE IF NOT EXISTS "User" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "metadata" JSONB NOT NULL,
    "identifier" TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "Thread" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMP(3),
    "name" TEXT,
    "metadata" JSONB NOT NULL,
    "userId" TEXT,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    CONSTRAINT "Thread_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Thread_userId_fkey" FOREIGN KEY ("userId")
        REFERENCES "User" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

CREATE TABLE IF NOT EXISTS "Step" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "parentId" TEXT,
    "threadId" TEXT,
    "input" TEXT,
    "metadata" JSONB NOT NULL,
    "name" TEXT,
    "output" TEXT,
    "type" "StepType" NOT NULL,
    "showInput" TEXT DEFAULT 'json',
    "isError" BOOLEAN DEFAULT false,
    "startTime" TIMESTAMP(3) NOT NULL,
    "endTime" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Step_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Step_parentId_fkey" FOREIGN KEY ("parentId")
        REFERENCES "Step" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Step_threadId_fkey" FOREIGN KEY ("threadId")
        REFERENCES "Thread" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE IF NOT EXISTS "Element" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "threadId" TEXT,
    "stepId" TEXT NOT NULL,
    "metadata" JSONB NOT NULL,
    "mime" TEXT,
    "name" TEXT NOT NULL,
    "objectKey" TEXT,
    "url" TEXT,
    "chainlitKey" TEXT,
    "display" TEXT,
    "size" TEXT,
    "language" TEXT,
    "page" INTEGER,
    "props" JSONB,
    CONSTRAINT "Element_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Element_stepId_fkey" FOREIGN KEY ("stepId")
        REFERENCES "Step" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Element_threadId_fkey" FOREIGN KEY ("threadId")
        REFERENCES "Thread" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE IF NOT EXISTS "Feedback" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "stepId" TEXT,
    "name" TEXT NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,
    "comment" TEXT,
    CONSTRAINT "Feedback_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Feedback_stepId_fkey" FOREIGN KEY ("stepId")
        REFERENCES "Step" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- Tables made by older schemas lack columns added since; the data layer needs
-- them (a NOT NULL column without default cannot be added to a filled table,
-- and every version already has those).
ALTER TABLE "Thread" ADD COLUMN IF NOT EXISTS "deletedAt" TIMESTAMP(3);
ALTER TABLE "Thread" ADD COLUMN IF NOT EXISTS "name" TEXT;
ALTER TABLE "Thread" ADD COLUMN IF NOT EXISTS "userId" TEXT;
ALTER TABLE "Thread" ADD COLUMN IF NOT EXISTS "tags" TEXT[] DEFAULT ARRAY[]::TEXT[];
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "parentId" TEXT;
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "threadId" TEXT;
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "input" TEXT;
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "name" TEXT;
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "output" TEXT;
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "showInput" TEXT DEFAULT 'json';
ALTER TABLE "Step" ADD COLUMN IF NOT EXISTS "isError" BOOLEAN DEFAULT false;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "threadId" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "mime" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "objectKey" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "url" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "chainlitKey" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "display" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "size" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "language" TEXT;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "page" INTEGER;
ALTER TABLE "Element" ADD COLUMN IF NOT EXISTS "props" JSONB;
ALTER TABLE "Feedback" ADD COLUMN IF NOT EXISTS "stepId" TEXT;
ALTER TABLE "Feedback" ADD COLUMN IF NOT EXISTS "comment" TEXT;

-- "User".identifier is the ON CONFLICT target of the user upsert: it must be unique.
CREATE UNIQUE INDEX IF NOT EXISTS "User_identifier_key" ON "User" ("identifier");
-- Indexes for the lookups the data layer makes (names as in upstream's schema).
CREATE INDEX IF NOT EXISTS "Step_threadId_idx" ON "Step" ("threadId");
CREATE INDEX IF NOT EXISTS "Step_parentId_idx" ON "Step" ("parentId");
CREATE INDEX IF NOT EXISTS "Element_stepId_idx" ON "Element" ("stepId");
CREATE INDEX IF NOT EXISTS "Element_threadId_idx" ON "Element" ("threadId");
CREATE INDEX IF NOT EXISTS "Feedback_stepId_idx" ON "Feedback" ("stepId");
-- Not in upstream's schema: the thread list filters by user and sorts by date.
CREATE INDEX IF NOT EXISTS "Thread_userId_updatedAt_idx" ON "Thread" ("userId", "updatedAt");
