-- Rows as the app writes them, dated in the past (UTC wall time), with text
-- that a dump must carry unchanged: non-ASCII, quotes, newlines, JSON, arrays.
-- The migrations record is the chainlit_app role's (module chainlit_schema).
CREATE TABLE IF NOT EXISTS chainlit_schema_migrations (
    version text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO chainlit_schema_migrations (version, checksum)
VALUES ('0001_chainlit_2_0_base', 'test-seed'),
       ('0002_chainlit_2_6_thread_metadata_default', 'test-seed') ON CONFLICT DO NOTHING;

INSERT INTO "User" (id, "createdAt", "updatedAt", metadata, identifier) VALUES
    ('0b7c2a52-0000-4000-8000-000000000001', '2024-05-01 09:00:00.123', '2024-05-01 09:00:00.123', '{"provider": "credentials"}', 'alice'),
    ('0b7c2a52-0000-4000-8000-000000000002', '2024-05-02 10:30:00.000', '2024-05-03 08:00:00.000', '{"role": "admin"}', 'bob')
ON CONFLICT DO NOTHING;

INSERT INTO "Thread" (id, "createdAt", "updatedAt", name, metadata, "userId", tags) VALUES
    ('1c1e0000-0000-4000-8000-000000000001', '2024-05-01 09:01:00.000', '2024-05-01 09:05:00.000', 'Grüße aus Köln', '{"chat_profile": "default"}', '0b7c2a52-0000-4000-8000-000000000001', ARRAY['work']),
    ('1c1e0000-0000-4000-8000-000000000002', '2024-05-01 12:00:00.000', '2024-05-01 12:01:00.000', 'It''s "quoted"', '{}', '0b7c2a52-0000-4000-8000-000000000001', ARRAY[]::text[]),
    ('1c1e0000-0000-4000-8000-000000000003', '2024-05-02 10:31:00.000', '2024-05-02 10:40:00.000', '你好', '{}', '0b7c2a52-0000-4000-8000-000000000002', ARRAY['a', 'b'])
ON CONFLICT DO NOTHING;

INSERT INTO "Step" (id, "createdAt", "updatedAt", "threadId", "parentId", input, output, metadata, name, type, "startTime", "endTime") VALUES
    ('2d2e0000-0000-4000-8000-000000000001', '2024-05-01 09:01:00.100', '2024-05-01 09:01:00.100', '1c1e0000-0000-4000-8000-000000000001', NULL, '', 'Hallo, wie geht''s?', '{}', 'alice', 'user_message', '2024-05-01 09:01:00.100', '2024-05-01 09:01:00.100'),
    ('2d2e0000-0000-4000-8000-000000000002', '2024-05-01 09:01:01.000', '2024-05-01 09:01:02.000', '1c1e0000-0000-4000-8000-000000000001', '2d2e0000-0000-4000-8000-000000000001', '', E'Gut, danke.\nUnd dir?', '{"model": "echo"}', 'Assistant', 'assistant_message', '2024-05-01 09:01:01.000', '2024-05-01 09:01:02.000'),
    ('2d2e0000-0000-4000-8000-000000000003', '2024-05-01 12:00:00.500', '2024-05-01 12:00:00.500', '1c1e0000-0000-4000-8000-000000000002', NULL, '', 'Say "hi"', '{}', 'alice', 'user_message', '2024-05-01 12:00:00.500', '2024-05-01 12:00:00.500'),
    ('2d2e0000-0000-4000-8000-000000000004', '2024-05-01 12:00:01.000', '2024-05-01 12:00:01.000', '1c1e0000-0000-4000-8000-000000000002', NULL, '{"q": 1}', 'hi', '{}', 'lookup', 'tool', '2024-05-01 12:00:01.000', '2024-05-01 12:00:01.000'),
    ('2d2e0000-0000-4000-8000-000000000005', '2024-05-02 10:31:00.000', '2024-05-02 10:31:00.000', '1c1e0000-0000-4000-8000-000000000003', NULL, '', '早上好', '{}', 'bob', 'user_message', '2024-05-02 10:31:00.000', '2024-05-02 10:31:00.000'),
    ('2d2e0000-0000-4000-8000-000000000006', '2024-05-02 10:31:02.000', '2024-05-02 10:31:03.000', '1c1e0000-0000-4000-8000-000000000003', NULL, '', '早上好 ✓', '{}', 'Assistant', 'assistant_message', '2024-05-02 10:31:02.000', '2024-05-02 10:31:03.000')
ON CONFLICT DO NOTHING;

INSERT INTO "Element" (id, "createdAt", "threadId", "stepId", metadata, mime, name, display, size) VALUES
    ('3e3f0000-0000-4000-8000-000000000001', '2024-05-01 09:01:02.000', '1c1e0000-0000-4000-8000-000000000001', '2d2e0000-0000-4000-8000-000000000002', '{}', 'text/plain', 'notes.txt', 'inline', 'small')
ON CONFLICT DO NOTHING;

INSERT INTO "Feedback" (id, "createdAt", "stepId", name, value, comment) VALUES
    ('4f4a0000-0000-4000-8000-000000000001', '2024-05-01 09:02:00.000', '2d2e0000-0000-4000-8000-000000000002', 'user_feedback', 1, 'très bien')
ON CONFLICT DO NOTHING;
