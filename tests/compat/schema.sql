-- The compatibility suite's tables (tests/compat): created before the slots, so that both
-- readers see every change of changes.sql. One column per rendering, named after its type.
CREATE EXTENSION hstore;
CREATE TYPE mood AS ENUM ('calm', 'angry', 'it''s "odd"');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);

CREATE TABLE types (
  id int PRIMARY KEY,
  c_int2 smallint, c_int4 int, c_int8 bigint, c_oid oid,
  c_numeric numeric, c_numeric_38 numeric(38,0), c_numeric_scaled numeric(12,3),
  c_real real, c_double double precision,
  c_bool boolean,
  c_char char(4), c_varchar varchar(40), c_text text, c_name name,
  c_bytea bytea, c_uuid uuid, c_json json, c_jsonb jsonb,
  c_date date, c_timestamp timestamp, c_timestamp_3 timestamp(3), c_timestamp_0 timestamp(0),
  c_timestamptz timestamptz, c_timestamptz_3 timestamptz(3), c_timestamptz_0 timestamptz(0),
  c_time time, c_time_3 time(3), c_time_0 time(0), c_timetz timetz, c_timetz_0 timetz(0),
  c_interval interval,
  c_int_array int[], c_text_array text[], c_int_array_2d int[][], c_numeric_array numeric[],
  c_timestamptz_array timestamptz[], c_uuid_array uuid[],
  c_enum mood, c_domain posint,
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8,
  c_money money,
  c_bit bit(3), c_bit_1 bit(1), c_varbit varbit, c_varbit_long varbit(80),
  c_point point,
  c_tsvector tsvector, c_int4range int4range, c_int8range int8range, c_numrange numrange,
  c_tstzrange tstzrange, c_daterange daterange,
  c_xml xml, c_hstore hstore, c_tsquery tsquery, c_pg_lsn pg_lsn,
  c_generated bigint GENERATED ALWAYS AS (c_int4::bigint * 2) STORED
);

-- Row operations under REPLICA IDENTITY DEFAULT and FULL.
CREATE TABLE ops (id int PRIMARY KEY, note text, amount numeric(10,2));
CREATE TABLE ops_full (id int PRIMARY KEY, note text, amount numeric(10,2));
ALTER TABLE ops_full REPLICA IDENTITY FULL;

-- A primary key, and a replica identity on another unique index.
CREATE TABLE keyed_by_index (id int PRIMARY KEY, code text NOT NULL, note text);
CREATE UNIQUE INDEX keyed_by_index_code ON keyed_by_index (code);
ALTER TABLE keyed_by_index REPLICA IDENTITY USING INDEX keyed_by_index_code;

-- No primary key, but a unique index.
CREATE TABLE unique_no_pk (code text NOT NULL, note text);
CREATE UNIQUE INDEX unique_no_pk_code ON unique_no_pk (code);
ALTER TABLE unique_no_pk REPLICA IDENTITY FULL;

-- A name with a character outside [A-Za-z0-9._-] that takes two bytes in UTF-8.
CREATE TABLE "café" (id int PRIMARY KEY, note text);

-- A composite key.
CREATE TABLE composite (region text, id bigint, note text, PRIMARY KEY (region, id));

-- No primary key (FULL, so that updates and deletes are published).
CREATE TABLE no_pk (a int, b text);
ALTER TABLE no_pk REPLICA IDENTITY FULL;

-- TOASTed values that an update leaves unchanged, under DEFAULT and FULL.
CREATE TABLE toasted (id int PRIMARY KEY, n int, big_text text, big_bytea bytea, big_json jsonb,
                      big_ints int[]);
ALTER TABLE toasted ALTER COLUMN big_text SET STORAGE EXTERNAL,
                    ALTER COLUMN big_bytea SET STORAGE EXTERNAL,
                    ALTER COLUMN big_json SET STORAGE EXTERNAL,
                    ALTER COLUMN big_ints SET STORAGE EXTERNAL;
-- A TOASTed primary key value that an update leaves unchanged.
CREATE TABLE toasted_key (k text PRIMARY KEY, n int);
ALTER TABLE toasted_key ALTER COLUMN k SET STORAGE EXTERNAL;
CREATE TABLE toasted_full (id int PRIMARY KEY, n int, big_text text);
ALTER TABLE toasted_full ALTER COLUMN big_text SET STORAGE EXTERNAL;
ALTER TABLE toasted_full REPLICA IDENTITY FULL;

-- A partitioned table.
CREATE TABLE measurements (id int, taken date, reading numeric, PRIMARY KEY (id, taken))
  PARTITION BY RANGE (taken);
CREATE TABLE measurements_2025 PARTITION OF measurements
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

-- Mixed case and spaces.
CREATE SCHEMA "SalesDept";
CREATE TABLE "SalesDept"."Order Items" ("Item Id" int PRIMARY KEY, "Quantity" int, "Note Text" text);

-- The last change of the workload: both readers stop at it.
CREATE TABLE workload_end (id int PRIMARY KEY);
