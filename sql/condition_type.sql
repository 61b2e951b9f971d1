-- witn.condition: the validated billable condition type. Valid literals and their canonical
-- text, the jsonb casts, binary send/receive, numbers, a condition column, and every
-- validation error with its exact path and SQLSTATE.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
RESET client_min_messages;

-- Runs one statement and reports the error it raised: SQLSTATE, message, detail and hint
-- ('ok' when it raised none).
CREATE FUNCTION pg_temp.error_of(statement text,
    OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Valid literals: every operator, and the canonical text each one is stored and printed as
-- (keys in the order fact, operator, value; ", " and ": " separators; numbers keep their scale).
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE valid_condition (n int PRIMARY KEY, what text, input text);
INSERT INTO valid_condition VALUES
    (1,  'empty: always holds',          '[]'),
    (2,  'empty with spaces',            E' [ \n\t ] '),
    (3,  'seen',                         '[{"fact":"downloaded","operator":"seen"}]'),
    (4,  'not seen',                     '[{"fact":"revoked","operator":"not seen"}]'),
    (5,  'count_gte',                    '[{"fact":"warning","operator":"count_gte","value":3}]'),
    (6,  'count_lte',                    '[{"fact":"warning","operator":"count_lte","value":3}]'),
    (7,  'count_gt',                     '[{"fact":"warning","operator":"count_gt","value":3}]'),
    (8,  'count_lt',                     '[{"fact":"warning","operator":"count_lt","value":3}]'),
    (9,  'count_eq',                     '[{"fact":"warning","operator":"count_eq","value":3}]'),
    (10, 'count_eq 0',                   '[{"fact":"warning","operator":"count_eq","value":0}]'),
    (11, 'match a string',               '[{"fact":"inspection","operator":"match","value":"pass"}]'),
    (12, 'match a number',               '[{"fact":"inspection","operator":"match","value":4}]'),
    (13, 'match true',                   '[{"fact":"inspection","operator":"match","value":true}]'),
    (14, 'match false',                  '[{"fact":"inspection","operator":"match","value":false}]'),
    (15, 'match the empty string',       '[{"fact":"inspection","operator":"match","value":""}]'),
    (16, 'gte',                          '[{"fact":"csat","operator":"gte","value":4}]'),
    (17, 'lte',                          '[{"fact":"csat","operator":"lte","value":4}]'),
    (18, 'gt',                           '[{"fact":"csat","operator":"gt","value":4}]'),
    (19, 'lt',                           '[{"fact":"csat","operator":"lt","value":4}]'),
    (20, 'not gte',                      '[{"fact":"csat","operator":"not gte","value":4}]'),
    (21, 'not lte',                      '[{"fact":"csat","operator":"not lte","value":3}]'),
    (22, 'not gt',                       '[{"fact":"csat","operator":"not gt","value":4}]'),
    (23, 'not lt',                       '[{"fact":"csat","operator":"not lt","value":4}]'),
    (24, 'keys in any order',            '[{"value":4,"operator":"gte","fact":"csat"}]'),
    (25, 'spaces and newlines',          E'[\n  { "fact" : "csat" ,\n    "operator" : "gte" , "value" : 4 }\n]'),
    (26, 'several leaves, one fact twice',
         '[{"fact":"csat","operator":"gte","value":2},{"fact":"csat","operator":"lte","value":4},{"fact":"escalated","operator":"not seen"}]'),
    (27, 'same leaf twice is kept',      '[{"fact":"a","operator":"seen"},{"fact":"a","operator":"seen"}]'),
    (28, 'number 4.0 keeps its scale',   '[{"fact":"csat","operator":"gte","value":4.0}]'),
    (29, 'number 4.50 keeps its scale',  '[{"fact":"csat","operator":"gte","value":4.50}]'),
    (30, 'number 1e3 is 1000',           '[{"fact":"csat","operator":"gte","value":1e3}]'),
    (31, 'number 1E+3 is 1000',          '[{"fact":"csat","operator":"gte","value":1E+3}]'),
    (32, 'number 2.5e-1 is 0.25',        '[{"fact":"csat","operator":"gte","value":2.5e-1}]'),
    (33, 'number 1.50e1 is 15.0',        '[{"fact":"csat","operator":"gte","value":1.50e1}]'),
    (34, 'negative number',              '[{"fact":"balance","operator":"lt","value":-0.5}]'),
    (35, 'minus zero is 0',              '[{"fact":"balance","operator":"gte","value":-0}]'),
    (36, 'beyond double precision',      '[{"fact":"n","operator":"gt","value":9007199254740993}]'),
    (37, 'many fraction digits',         '[{"fact":"credit_score","operator":"lt","value":699.99999999999999999999}]'),
    (38, 'match 4.0 keeps its scale',    '[{"fact":"n","operator":"match","value":4.0}]'),
    (39, 'count 3.0 is the integer 3',   '[{"fact":"warning","operator":"count_gte","value":3.0}]'),
    (40, 'count 1e1 is the integer 10',  '[{"fact":"warning","operator":"count_gte","value":1e1}]'),
    (41, 'largest count',                '[{"fact":"warning","operator":"count_lte","value":9223372036854775807}]'),
    (42, 'escapes in strings',           '[{"fact":"say \"hi\"\\now","operator":"match","value":"tab\there\u00e9\/"}]'),
    (43, 'non-ASCII fact',               '[{"fact":"café_訂單","operator":"seen"}]'),
    (44, 'fact of 255 bytes',            '[{"fact":"' || repeat('f', 255) || '","operator":"seen"}]'),
    (45, '256 leaves',                   '[' || (SELECT string_agg('{"fact":"f' || i || '","operator":"seen"}', ',') FROM generate_series(1, 256) i) || ']');

-- Canonical output; the long ones (44, 45) by length and ends only.
SELECT n, what,
       CASE WHEN n < 44 THEN input::witn.condition::text
            ELSE length(input::witn.condition::text) || ' chars: ' || left(input::witn.condition::text, 40) || ' ... ' || right(input::witn.condition::text, 30)
       END AS canonical
FROM valid_condition ORDER BY n;

-- Text round trip: canonical text reads back as itself.
SELECT n, what FROM valid_condition
WHERE input::witn.condition::text::witn.condition::text IS DISTINCT FROM input::witn.condition::text;

-- ---------------------------------------------------------------------------------------------
-- jsonb casts, both ways.
-- ---------------------------------------------------------------------------------------------
-- condition -> jsonb: jsonb orders keys its own way but keeps every number's scale.
SELECT n, input::witn.condition::jsonb AS as_jsonb
FROM valid_condition WHERE n IN (1, 3, 5, 11, 13, 28, 30, 36, 37, 42) ORDER BY n;

-- jsonb -> condition -> text is the canonical text, for every valid literal.
SELECT n, what FROM valid_condition
WHERE input::jsonb::witn.condition::text IS DISTINCT FROM input::witn.condition::text
   OR input::witn.condition::jsonb IS DISTINCT FROM input::jsonb;

SELECT '[{"fact": "csat", "operator": "not lte", "value": 3}]'::jsonb::witn.condition;
SELECT jsonb_build_array(jsonb_build_object('fact', 'signed', 'operator', 'seen'))::witn.condition;
-- Through jsonb the condition is validated the same way.
SELECT '[{"type": "signed", "operator": "seen"}]'::jsonb::witn.condition;
-- jsonb itself keeps the last of duplicate keys, so a duplicate never reaches the condition.
SELECT '[{"fact": "a", "fact": "b", "operator": "seen"}]'::jsonb::witn.condition;
-- condition -> jsonb is usable with jsonb operators.
SELECT c::jsonb -> 0 ->> 'operator' AS operator, jsonb_array_length(c::jsonb) AS leaves
FROM (SELECT '[{"fact":"csat","operator":"not lte","value":3},{"fact":"escalated","operator":"not seen"}]'::witn.condition AS c) s;

-- ---------------------------------------------------------------------------------------------
-- Binary send/receive. condition_recv takes an internal buffer, so the bytes go through
-- COPY (FORMAT binary): a bytea column's COPY image is the same as a condition's, so bytes
-- written from bytea arrive unchanged at the condition's receive function. (Server-side COPY
-- needs a superuser, as installcheck runs.)
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE received (c witn.condition);
CREATE FUNCTION pg_temp.condition_recv(bytes bytea) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    file text := '/tmp/witn_regress_condition_' || pg_backend_pid() || '.bin';
    result text;
    detail text;
BEGIN
    TRUNCATE received;
    EXECUTE format('COPY (SELECT %L::bytea) TO %L (FORMAT binary)', bytes, file);
    -- The program removes the file whether or not the condition is accepted.
    EXECUTE format('COPY received FROM PROGRAM %L (FORMAT binary)', format('cat %s; rm -f %s', file, file));
    SELECT c::text INTO result FROM received;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || ' (' || detail || ')';
END $$;

-- The binary form: a version byte 1, then the canonical JSON text.
SELECT witn.condition_send('[]');
SELECT witn.condition_send('[{"fact":"a","operator":"seen"}]');

-- send -> recv gives back the same condition, for every valid literal.
SELECT n, what FROM valid_condition
WHERE pg_temp.condition_recv(witn.condition_send(input::witn.condition)) IS DISTINCT FROM input::witn.condition::text;
SELECT pg_temp.condition_recv(witn.condition_send('[{"fact":"csat","operator":"gte","value":4.0}]'));

-- recv validates exactly like text input: a non-canonical body is canonicalized, a bad one rejected.
SELECT pg_temp.condition_recv('\x01'::bytea || convert_to('[{"value":1e3,"operator":"gte","fact":"csat"}]', 'UTF8'));
SELECT pg_temp.condition_recv('\x01'::bytea || convert_to('[{"type":"signed","operator":"seen"}]', 'UTF8'));
SELECT pg_temp.condition_recv('\x01'::bytea || convert_to('[{"fact":"csat","operator":"gte","value":"4"}]', 'UTF8'));
SELECT pg_temp.condition_recv('\x01'::bytea || convert_to('[{"fact":', 'UTF8'));
SELECT pg_temp.condition_recv('\x01'::bytea);
SELECT pg_temp.condition_recv('\x'::bytea);
-- Unknown version byte.
SELECT pg_temp.condition_recv('\x02'::bytea || convert_to('[]', 'UTF8'));
SELECT pg_temp.condition_recv(convert_to('[]', 'UTF8'));

-- ---------------------------------------------------------------------------------------------
-- A condition column rejects invalid input; nothing is stored.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE contract (id int PRIMARY KEY, condition witn.condition NOT NULL DEFAULT '[]');
INSERT INTO contract (id) VALUES (1);
INSERT INTO contract VALUES (2, '[{"fact":"csat","operator":"gte","value":4.0}]');
-- jsonb is assigned without an explicit cast.
INSERT INTO contract VALUES (3, '[{"fact":"signed","operator":"seen"}]'::jsonb);
INSERT INTO contract VALUES (4, '[{"type":"signed","operator":"seen"}]');
-- One bad row fails the whole statement.
INSERT INTO contract VALUES (5, '[]'), (6, '[{"fact":"csat","operator":"gte","value":"4"}]');
INSERT INTO contract VALUES (7, '[{"type":"signed","operator":"seen"}]'::jsonb);
UPDATE contract SET condition = '[{"fact":"signed","operator":"seen","value":1}]' WHERE id = 1;
SELECT id, condition FROM contract ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- Validation errors: the message names the exact path and what was expected there; the
-- detail repeats the path. First, as psql prints them.
-- ---------------------------------------------------------------------------------------------
-- The seed example: a wrong key name.
SELECT '[{"type": "signed", "operator": "seen"}]'::witn.condition;
-- An error in a later leaf names its index.
SELECT '[{"fact": "signed", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": "4"}]'::witn.condition;
SELECT '[{"fact": "a", "operator": "seen"},]'::witn.condition;

-- Every validation error, with its SQLSTATE (WT001 for all), message and detail.
CREATE TEMP TABLE invalid_condition (n int PRIMARY KEY, what text, input text);
INSERT INTO invalid_condition VALUES
    (1,  'not an array: an object',        '{"fact": "signed", "operator": "seen"}'),
    (2,  'not an array: a string',         '"seen"'),
    (3,  'not an array: null',             'null'),
    (4,  'leaf not an object: a string',   '["signed"]'),
    (5,  'leaf not an object: an array',   '[["signed", "seen"]]'),
    (6,  'leaf not an object: null',       '[null]'),
    (7,  'unknown key (seed example)',     '[{"type": "signed", "operator": "seen"}]'),
    (8,  'unknown key beside valid ones',  '[{"fact": "signed", "operator": "seen", "note": "x"}]'),
    (9,  'missing fact',                   '[{"operator": "seen"}]'),
    (10, 'empty fact',                     '[{"fact": "", "operator": "seen"}]'),
    (11, 'fact not a string: a number',    '[{"fact": 1, "operator": "seen"}]'),
    (12, 'fact not a string: null',        '[{"fact": null, "operator": "seen"}]'),
    (13, 'fact longer than 255 bytes',     '[{"fact": "' || repeat('f', 256) || '", "operator": "seen"}]'),
    (14, 'missing operator',               '[{"fact": "signed"}]'),
    (15, 'unknown operator',               '[{"fact": "signed", "operator": "exists"}]'),
    (16, 'operator in another case',       '[{"fact": "signed", "operator": "Seen"}]'),
    (17, 'operator with an underscore',    '[{"fact": "signed", "operator": "not_seen"}]'),
    (18, 'operator not a string',          '[{"fact": "signed", "operator": 1}]'),
    (19, 'operator null',                  '[{"fact": "signed", "operator": null}]'),
    (20, 'seen with a value',              '[{"fact": "signed", "operator": "seen", "value": true}]'),
    (21, 'not seen with a null value',     '[{"fact": "revoked", "operator": "not seen", "value": null}]'),
    (22, 'count_gte without a value',      '[{"fact": "warning", "operator": "count_gte"}]'),
    (23, 'count_lte negative',             '[{"fact": "warning", "operator": "count_lte", "value": -1}]'),
    (24, 'count_eq fractional',            '[{"fact": "warning", "operator": "count_eq", "value": 2.5}]'),
    (25, 'count_gt a string',              '[{"fact": "warning", "operator": "count_gt", "value": "3"}]'),
    (26, 'count_lt a boolean',             '[{"fact": "warning", "operator": "count_lt", "value": true}]'),
    (27, 'count_eq beyond bigint',         '[{"fact": "warning", "operator": "count_eq", "value": 9223372036854775808}]'),
    (28, 'gte a string (gte "4")',         '[{"fact": "csat", "operator": "gte", "value": "4"}]'),
    (29, 'lte without a value',            '[{"fact": "csat", "operator": "lte"}]'),
    (30, 'gt a boolean',                   '[{"fact": "csat", "operator": "gt", "value": true}]'),
    (31, 'lt null',                        '[{"fact": "csat", "operator": "lt", "value": null}]'),
    (32, 'not gte a string',               '[{"fact": "csat", "operator": "not gte", "value": "4"}]'),
    (33, 'not lte without a value',        '[{"fact": "csat", "operator": "not lte"}]'),
    (34, 'not gt an array',                '[{"fact": "csat", "operator": "not gt", "value": [4]}]'),
    (35, 'not lt an object',               '[{"fact": "csat", "operator": "not lt", "value": {"n": 4}}]'),
    (36, 'match null',                     '[{"fact": "inspection", "operator": "match", "value": null}]'),
    (37, 'match an array',                 '[{"fact": "inspection", "operator": "match", "value": ["pass"]}]'),
    (38, 'match an object',                '[{"fact": "inspection", "operator": "match", "value": {"v": "pass"}}]'),
    (39, 'match without a value',          '[{"fact": "inspection", "operator": "match"}]'),
    (40, 'number over 1000 digits',        '[{"fact": "csat", "operator": "gte", "value": 1e1000}]'),
    (41, 'nested path [1].value',          '[{"fact": "signed", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": "4"}]'),
    (42, 'nested path [2].fact',           '[{"fact": "a", "operator": "seen"}, {"fact": "b", "operator": "seen"}, {"operator": "seen"}]'),
    (43, 'first problem in a leaf wins',   '[{"fact": "", "operator": "nope", "value": "x"}]'),
    (44, 'duplicate key',                  '[{"fact": "a", "operator": "seen", "fact": "b"}]'),
    (45, 'malformed: empty input',         ''),
    (46, 'malformed: only spaces',         '   '),
    (47, 'malformed: unterminated array',  '[{"fact": "a", "operator": "seen"}'),
    (48, 'malformed: trailing comma',      '[{"fact": "a", "operator": "seen"},]'),
    (49, 'malformed: trailing garbage',    '[] []'),
    (50, 'malformed: single quotes',       $$[{'fact': 'a', 'operator': 'seen'}]$$),
    (51, 'malformed: bare word',           '[{"fact": a, "operator": "seen"}]'),
    (52, 'malformed: NaN',                 '[{"fact": "csat", "operator": "gte", "value": NaN}]'),
    (53, 'malformed: leading zero',        '[{"fact": "csat", "operator": "gte", "value": 04}]'),
    (54, 'malformed: leading plus',        '[{"fact": "csat", "operator": "gte", "value": +4}]'),
    (55, 'malformed: unterminated string', '[{"fact": "a'),
    (56, 'malformed: \u0000 in a string',  '[{"fact": "a\u0000", "operator": "seen"}]'),
    (57, 'malformed: lone surrogate',      '[{"fact": "\ud800", "operator": "seen"}]'),
    (58, 'malformed: bad escape',          '[{"fact": "\x", "operator": "seen"}]'),
    (59, 'too deeply nested',              '[[[[[[[[[[]]]]]]]]]]'),
    (60, 'more than 256 leaves',           '[' || (SELECT string_agg('{"fact":"f' || i || '","operator":"seen"}', ',') FROM generate_series(1, 257) i) || ']'),
    (61, 'canonical form over 64 KiB',     '[' || (SELECT string_agg('{"fact":"f","operator":"gte","value":1e999}', ',') FROM generate_series(1, 66) i) || ']');

\x on
SELECT n, what, e.code, e.message, e.detail
FROM invalid_condition, pg_temp.error_of(format('SELECT %L::witn.condition', input)) e
ORDER BY n;
\x off

-- Every one is WT001 (VALIDATION_ERROR).
SELECT e.code, count(*) FROM invalid_condition, pg_temp.error_of(format('SELECT %L::witn.condition', input)) e
GROUP BY e.code;

-- NULL stays NULL.
SELECT NULL::witn.condition IS NULL AS is_null, NULL::jsonb::witn.condition IS NULL AS from_jsonb_null;
