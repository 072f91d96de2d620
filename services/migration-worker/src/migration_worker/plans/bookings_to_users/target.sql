CREATE TABLE IF NOT EXISTS users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    legacy_key text NOT NULL UNIQUE,
    email text NOT NULL UNIQUE,
    full_name text,
    phone text,
    created_at timestamptz
);
CREATE TABLE IF NOT EXISTS bookings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    legacy_key text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    customer_email text,
    service text,
    booked_at timestamptz NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency char(3) NOT NULL,
    status text NOT NULL CHECK (status IN ('paid', 'pending', 'cancelled'))
);
CREATE TABLE IF NOT EXISTS payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    legacy_key text NOT NULL UNIQUE,
    booking_id bigint NOT NULL REFERENCES bookings (id),
    user_id bigint REFERENCES users (id),
    reference text NOT NULL UNIQUE,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL,
    paid_at timestamptz
);
CREATE TABLE IF NOT EXISTS user_statistics (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    legacy_key text NOT NULL UNIQUE,
    user_id bigint NOT NULL UNIQUE REFERENCES users (id),
    total_bookings integer NOT NULL,
    total_spent_minor bigint NOT NULL,
    currency char(3) NOT NULL,
    first_booking_at timestamptz,
    last_booking_at timestamptz
);
