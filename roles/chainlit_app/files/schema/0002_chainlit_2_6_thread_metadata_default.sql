-- Chainlit 2.6.0 and 2.10.x insert a "Thread" without its metadata when the
-- thread is first created by a step (chainlit#2270, #2827, #2851): on a NOT
-- NULL column without a default, every new thread of theirs fails, and the
-- user's first message with it. A default of an empty object lets them save;
-- other releases always send the metadata and are not affected.
-- readable by chainlit >= 2.0.601
ALTER TABLE "Thread" ALTER COLUMN "metadata" SET DEFAULT '{}'::jsonb;
