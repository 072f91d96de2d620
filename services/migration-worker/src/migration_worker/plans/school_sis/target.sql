CREATE TABLE IF NOT EXISTS staff (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    first_name text, last_name text NOT NULL, email text, phone text, role text NOT NULL, hired_on date);
CREATE TABLE IF NOT EXISTS classes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    name text NOT NULL, grade integer, academic_year integer, teacher_id bigint REFERENCES staff (id));
CREATE TABLE IF NOT EXISTS students (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    first_name text, last_name text NOT NULL, date_of_birth date NOT NULL, gender text NOT NULL,
    grade integer, admitted_on date);
CREATE TABLE IF NOT EXISTS guardians (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    student_id bigint NOT NULL REFERENCES students (id), full_name text, relationship text, phone text, email text);
CREATE TABLE IF NOT EXISTS enrollments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    student_id bigint NOT NULL REFERENCES students (id), class_id bigint NOT NULL REFERENCES classes (id),
    enrolled_on date);
CREATE TABLE IF NOT EXISTS fee_invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    student_id bigint NOT NULL REFERENCES students (id), term text, amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL, issued_on date, due_on date);
CREATE TABLE IF NOT EXISTS fee_payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text NOT NULL UNIQUE,
    invoice_id bigint NOT NULL REFERENCES fee_invoices (id), amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL, paid_on date NOT NULL, method text,
    CONSTRAINT paid_after_2000 CHECK (paid_on >= DATE '2000-01-01'));
