-- The compatibility suite's workload: committed after both slots exist, read by tidemark and
-- by Debezium. Edge values of every rendering, then every kind of change.

INSERT INTO types (id, c_int2, c_int4, c_int8, c_oid, c_numeric, c_numeric_38, c_numeric_scaled,
  c_real, c_double, c_bool, c_char, c_varchar, c_text, c_name, c_bytea, c_uuid, c_json, c_jsonb,
  c_date, c_timestamp, c_timestamp_3, c_timestamp_0, c_timestamptz, c_timestamptz_3,
  c_timestamptz_0, c_time, c_time_3, c_time_0, c_timetz, c_timetz_0, c_interval,
  c_int_array, c_text_array, c_int_array_2d, c_numeric_array, c_timestamptz_array, c_uuid_array,
  c_enum, c_domain, c_inet, c_cidr, c_macaddr, c_macaddr8, c_money,
  c_bit, c_bit_1, c_varbit, c_varbit_long, c_point,
  c_tsvector, c_int4range, c_int8range, c_numrange, c_tstzrange, c_daterange, c_xml, c_hstore,
  c_tsquery, c_pg_lsn)
VALUES
  -- Minima, before 1970, text with quotes, backslashes, newlines and 4-byte UTF-8.
  (1, -32768, -2147483648, -9223372036854775808, 0,
   -12345678901234567890.123456789012345678, -99999999999999999999999999999999999999, -123456789.001,
   -3.4028235e38, -1.7976931348623157e308, false,
   'a''"', E'q''uo"te \\ back\\slash', E'line one\nline two\ttab \U0001F600 caf\u00e9', 'n',
   '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1, "b": [true, null]}', '{"b": [1, 2], "a": "x"}',
   '1969-07-20', '1969-07-20 20:17:40.123456', '1900-01-01 00:00:00.123', '1969-12-31 23:59:59',
   '1969-07-20 20:17:40.123456+00', '1901-12-13 20:45:52.1+00', '1969-12-31 23:59:59+02',
   '00:00:00', '13:45:56.789', '13:45:56', '13:45:56.78+03', '10:00:00-05:30',
   '-1 years -2 mons +3 days -04:05:06.5',
   '{1,NULL,3}', '{"a b",NULL,"c\"d","e\\f",""}', '{{1,2},{3,4}}', '{1.5,NaN,-0.001}',
   '{"2026-01-01 00:00:00+00",NULL}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
   'calm', 1, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
   -1234.56,
   B'101', B'0', B'1101', B'10000000000000000000000000000000000000000000000000000000000000000000000000000001',
   '(-1.5,2.25)',
   'a fat cat sat', '[1,10)', '[-9223372036854775808,0)', '(-1.5,2.5]',
   '[1969-01-01 00:00+00,2040-02-01 00:00+00)', '[2026-01-01,2026-02-01)',
   '<a x="1">b &amp; c</a>', '"k"=>"v", "a b"=>NULL, "q\"uote"=>"x"',
   'fat & (rat | cat)', '16/B374D848'),
  -- Maxima, after 2038.
  (2, 32767, 2147483647, 9223372036854775807, 4294967295,
   98765432109876543210987654321098765432, 99999999999999999999999999999999999999, 999999999.999,
   3.4028235e38, 1.7976931348623157e308, true,
   'zzzz', '', '', 'name_with_63_chars_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
   '', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '[]', '{}',
   '2262-04-11', '2262-04-11 23:47:16.854775', '2038-01-19 03:14:08.123', '2099-12-31 23:59:59',
   '2040-01-01 00:00:00.5+02', '2038-01-19 03:14:08.999+00', '2100-01-01 00:00:00+00',
   '23:59:59.999999', '23:59:59.999', '23:59:59', '23:59:59.999999-12', '24:00:00+00',
   '1 year 2 mons 3 days 04:05:06.5',
   '{}', '{}', '{{NULL,1},{2,NULL}}', '{}', '{}', '{}',
   'it''s "odd"', 2147483647, '::1', '::/0', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff',
   92233720368547758.07,
   B'000', B'1', B'', B'1',
   '(0,0)',
   '', 'empty', '(,)', 'empty', '(,)', 'empty',
   '<x/>', '', NULL, NULL),
  -- Special values.
  (3, 0, 0, 0, 1, 'NaN', 0, 0,
   'NaN', 'Infinity', NULL, ' ', ' ', ' ', '',
   NULL, NULL, 'null', 'null',
   'infinity', 'infinity', '-infinity', 'infinity',
   '-infinity', 'infinity', '-infinity',
   NULL, NULL, NULL, NULL, NULL,
   '0 seconds',
   '{NULL}', '{NULL}', NULL, NULL, '{infinity,-infinity}', NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, 0,
   NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL,
   '-Infinity', '-Infinity', NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL,
   '-infinity', '-infinity', NULL, NULL,
   'infinity', NULL, NULL,
   NULL, NULL, NULL, NULL, NULL,
   '1 mon 2 days 00:00:00.000001',
   NULL, NULL, NULL, '{1.5,-0.001,100}', NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL,
   NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL,
   NULL,
   NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE types SET c_text = 'updated', c_int4 = 7 WHERE id = 1;
DELETE FROM types WHERE id = 2;

-- Insert, update, an update of the primary key, delete, truncate; under DEFAULT and FULL.
INSERT INTO ops VALUES (1, 'one', 1.10), (2, 'two', 2.20), (3, 'three', NULL);
UPDATE ops SET note = 'one, changed', amount = amount * 10 WHERE id = 1;
UPDATE ops SET id = 20 WHERE id = 2;
DELETE FROM ops WHERE id = 3;
TRUNCATE ops;
INSERT INTO ops_full VALUES (1, 'one', 1.10), (2, 'two', 2.20), (3, 'three', NULL);
UPDATE ops_full SET note = 'one, changed', amount = amount * 10 WHERE id = 1;
UPDATE ops_full SET id = 20 WHERE id = 2;
DELETE FROM ops_full WHERE id = 3;

BEGIN;
INSERT INTO composite VALUES ('eu', 1, 'a'), ('us', 1, 'b');
UPDATE composite SET region = 'apac' WHERE region = 'us';
DELETE FROM composite WHERE region = 'eu';
COMMIT;

INSERT INTO keyed_by_index VALUES (1, 'a', 'one'), (2, 'b', 'two');
UPDATE keyed_by_index SET note = 'one, changed' WHERE id = 1;
UPDATE keyed_by_index SET code = 'b2' WHERE id = 2;
DELETE FROM keyed_by_index WHERE id = 1;

INSERT INTO unique_no_pk VALUES ('a', 'one'), ('b', 'two');
UPDATE unique_no_pk SET note = 'one, changed' WHERE code = 'a';
DELETE FROM unique_no_pk WHERE code = 'b';

INSERT INTO "café" VALUES (1, 'crème');

INSERT INTO no_pk VALUES (1, 'a'), (1, 'a'), (2, NULL);
UPDATE no_pk SET b = 'b' WHERE a = 2;
DELETE FROM no_pk WHERE a = 1;

-- Values stored out of line, then updates that leave them unchanged.
INSERT INTO toasted
  SELECT 1, 0, string_agg(md5(g::text), ''), decode(string_agg(md5(g::text), ''), 'hex'),
         jsonb_build_object('k', string_agg(md5(g::text), '')), array_agg(g)
  FROM generate_series(1, 4000) g;
UPDATE toasted SET n = 1 WHERE id = 1;
DELETE FROM toasted WHERE id = 1;
INSERT INTO toasted_full SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
UPDATE toasted_full SET n = 1 WHERE id = 1;
INSERT INTO toasted_key SELECT string_agg(md5(g::text), ''), 0 FROM generate_series(1, 75) g;
UPDATE toasted_key SET n = 1;

INSERT INTO measurements VALUES (1, '2025-06-01', 1.5), (2, '2026-06-01', 2.5);
UPDATE measurements SET reading = 3.5 WHERE id = 2;
DELETE FROM measurements WHERE id = 1;

INSERT INTO "SalesDept"."Order Items" VALUES (1, 2, 'first'), (2, 5, NULL);
UPDATE "SalesDept"."Order Items" SET "Quantity" = 3 WHERE "Item Id" = 1;
DELETE FROM "SalesDept"."Order Items" WHERE "Item Id" = 2;

-- Logical decoding messages, in a transaction and outside one.
BEGIN;
INSERT INTO ops VALUES (4, 'with a message', 4.40);
SELECT pg_logical_emit_message(true, 'audit', 'in a transaction: ünïcode');
COMMIT;
SELECT pg_logical_emit_message(false, 'audit', '\x00ff'::bytea);
