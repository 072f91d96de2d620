CREATE TABLE IF NOT EXISTS legacy_notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    legacy_key text NOT NULL UNIQUE,
    school_code text,
    recipient_name text,
    recipient_phone text,
    recipient_email text,
    channel text NOT NULL,
    body text,
    status text NOT NULL,
    sent_at timestamptz NOT NULL,
    cost_minor bigint NOT NULL CHECK (cost_minor >= 0),
    currency char(3) NOT NULL
);
