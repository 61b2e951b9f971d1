-- witn.evaluate(condition, events): whether a condition holds over an event log, a JSON array
-- of {"action", "properties": {"value", ...}, "occurred_at"} in arrival order.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
RESET client_min_messages;

-- Runs one statement and reports the error it raised: SQLSTATE, message and detail ('ok' when
-- it raised none).
CREATE FUNCTION pg_temp.error_of(statement text, OUT code text, OUT message text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL;
END $$;

-- Each scenario states what it expects; the result column is what witn.evaluate answered.
CREATE TEMP TABLE scenario (
    topic text, n int, what text, condition witn.condition, events jsonb, expected boolean,
    PRIMARY KEY (topic, n));

-- ---------------------------------------------------------------------------------------------
-- The seed examples.
-- ---------------------------------------------------------------------------------------------
INSERT INTO scenario VALUES
-- Support ticket with negative signals.
('negative signals', 1, 'agent replied, customer disappears, no CSAT',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"ticket_opened"},{"action":"agent_replied"}]', true),
('negative signals', 2, 'agent replied, csat 5',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"csat","properties":{"value":5}}]', true),
('negative signals', 3, 'agent replied, csat 3 (low CSAT)',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"csat","properties":{"value":3}}]', false),
('negative signals', 4, 'agent replied, csat 2 then revised to 4',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"csat","properties":{"value":2}},{"action":"csat","properties":{"value":4}}]', true),
('negative signals', 5, 'agent replied, then escalated',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"escalated"}]', false),
('negative signals', 6, 'agent replied, then reopened',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"reopened"}]', false),
('negative signals', 7, 'no reply yet',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"ticket_opened"}]', false),
('negative signals', 8, 'csat submitted without a value',
 '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"agent_replied"},{"action":"csat"}]', false),
-- Single event.
('single event', 1, 'downloaded',     '[{"fact":"downloaded","operator":"seen"}]', '[{"action":"downloaded"}]', true),
('single event', 2, 'nothing yet',    '[{"fact":"downloaded","operator":"seen"}]', '[]', false),
('single event', 3, 'another action', '[{"fact":"downloaded","operator":"seen"}]', '[{"action":"viewed"}]', false),
('single event', 4, 'action names are case-sensitive', '[{"fact":"downloaded","operator":"seen"}]', '[{"action":"Downloaded"}]', false),
-- Both parties must sign.
('both parties sign', 1, 'buyer only',
 '[{"fact":"signed_by_buyer","operator":"seen"},{"fact":"signed_by_seller","operator":"seen"}]',
 '[{"action":"signed_by_buyer"}]', false),
('both parties sign', 2, 'seller twice, no buyer',
 '[{"fact":"signed_by_buyer","operator":"seen"},{"fact":"signed_by_seller","operator":"seen"}]',
 '[{"action":"signed_by_seller"},{"action":"signed_by_seller"}]', false),
('both parties sign', 3, 'both, seller first',
 '[{"fact":"signed_by_buyer","operator":"seen"},{"fact":"signed_by_seller","operator":"seen"}]',
 '[{"action":"signed_by_seller"},{"action":"signed_by_buyer"}]', true),
-- Signed but not revoked.
('signed not revoked', 1, 'signed',
 '[{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}]', '[{"action":"signed"}]', true),
('signed not revoked', 2, 'signed, then revoked',
 '[{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}]', '[{"action":"signed"},{"action":"revoked"}]', false),
('signed not revoked', 3, 'revoked before signing',
 '[{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}]', '[{"action":"revoked"},{"action":"signed"}]', false),
-- Minimum score threshold.
('csat gte 4', 1, 'csat 4.8 (attribution 0.8)', '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","properties":{"value":4.8,"attribution":0.8}}]', true),
('csat gte 4', 2, 'csat 4',   '[{"fact":"csat","operator":"gte","value":4}]', '[{"action":"csat","properties":{"value":4}}]', true),
('csat gte 4', 3, 'csat 3.9', '[{"fact":"csat","operator":"gte","value":4}]', '[{"action":"csat","properties":{"value":3.9}}]', false),
('csat gte 4', 4, 'no csat',  '[{"fact":"csat","operator":"gte","value":4}]', '[]', false),
('csat gte 4', 5, 'rating 4.8, the evaluation seed', '[{"fact":"rating","operator":"gte","value":4}]',
 '[{"action":"rating","properties":{"value":4.8}}]', true),
-- Value matches a specific result.
('inspection match', 1, 'pass',      '[{"fact":"inspection","operator":"match","value":"pass"}]', '[{"action":"inspection","properties":{"value":"pass"}}]', true),
('inspection match', 2, 'fail',      '[{"fact":"inspection","operator":"match","value":"pass"}]', '[{"action":"inspection","properties":{"value":"fail"}}]', false),
('inspection match', 3, 'PASS (case matters)', '[{"fact":"inspection","operator":"match","value":"pass"}]', '[{"action":"inspection","properties":{"value":"PASS"}}]', false),
('inspection match', 4, 'pass, then fail: latest wins', '[{"fact":"inspection","operator":"match","value":"pass"}]',
 '[{"action":"inspection","properties":{"value":"pass"}},{"action":"inspection","properties":{"value":"fail"}}]', false),
('inspection match', 5, 'fail, then pass: latest wins', '[{"fact":"inspection","operator":"match","value":"pass"}]',
 '[{"action":"inspection","properties":{"value":"fail"}},{"action":"inspection","properties":{"value":"pass"}}]', true),
('inspection match', 6, 'no inspection', '[{"fact":"inspection","operator":"match","value":"pass"}]', '[]', false),
-- Multi-step verification.
('multi-step', 1, 'verified, 720, signed',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"identity_check","properties":{"value":"verified"}},{"action":"credit_score","properties":{"value":720}},{"action":"document_signed"}]', true),
('multi-step', 2, 'verified, exactly 700, signed',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"identity_check","properties":{"value":"verified"}},{"action":"credit_score","properties":{"value":700}},{"action":"document_signed"}]', true),
('multi-step', 3, 'verified, 699.99999999999999999999, signed',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"identity_check","properties":{"value":"verified"}},{"action":"credit_score","properties":{"value":699.99999999999999999999}},{"action":"document_signed"}]', false),
('multi-step', 4, 'verified, 720, not signed',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"identity_check","properties":{"value":"verified"}},{"action":"credit_score","properties":{"value":720}}]', false),
('multi-step', 5, 'pending, 720, signed',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"identity_check","properties":{"value":"pending"}},{"action":"credit_score","properties":{"value":720}},{"action":"document_signed"}]', false),
('multi-step', 6, 'any order of steps',
 '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]',
 '[{"action":"document_signed"},{"action":"credit_score","properties":{"value":720}},{"action":"identity_check","properties":{"value":"verified"}}]', true),
-- Seen at least N times.
('warning count_gte 3', 1, '2 warnings', '[{"fact":"warning","operator":"count_gte","value":3}]',
 '[{"action":"warning"},{"action":"warning"}]', false),
('warning count_gte 3', 2, '3 warnings', '[{"fact":"warning","operator":"count_gte","value":3}]',
 '[{"action":"warning"},{"action":"warning"},{"action":"warning"}]', true),
('warning count_gte 3', 3, '4 warnings', '[{"fact":"warning","operator":"count_gte","value":3}]',
 '[{"action":"warning"},{"action":"warning"},{"action":"warning"},{"action":"warning"}]', true),
('warning count_gte 3', 4, '2 warnings among other events', '[{"fact":"warning","operator":"count_gte","value":3}]',
 '[{"action":"warning"},{"action":"notice"},{"action":"warning"},{"action":"notice"}]', false),
-- Per-unit billing for metered usage: attribution does not gate the outcome.
('api_call seen', 1, 'one call with attribution 1.2', '[{"fact":"api_call","operator":"seen"}]',
 '[{"action":"api_call","properties":{"attribution":1.2}}]', true),
('api_call seen', 2, 'one call with attribution 0', '[{"fact":"api_call","operator":"seen"}]',
 '[{"action":"api_call","properties":{"attribution":0}}]', true),
('api_call seen', 3, 'no call', '[{"fact":"api_call","operator":"seen"}]', '[]', false),
-- Empty conditions are vacuously true.
('empty condition', 1, 'no events',  '[]', '[]', true),
('empty condition', 2, 'any events', '[]', '[{"action":"anything","properties":{"value":false}}]', true);

SELECT topic, n, what, expected, witn.evaluate(condition, events) AS result
FROM scenario ORDER BY topic, n;

-- ---------------------------------------------------------------------------------------------
-- Every operator at, below and above its boundary.
-- ---------------------------------------------------------------------------------------------
-- Occurrence and count operators (N = 2) by how many events of the action there are.
SELECT op, witn.evaluate(c, '[]') AS "0 events",
       witn.evaluate(c, '[{"action":"x"}]') AS "1 event",
       witn.evaluate(c, '[{"action":"x"},{"action":"x"}]') AS "2 events",
       witn.evaluate(c, '[{"action":"x"},{"action":"x"},{"action":"x"}]') AS "3 events",
       witn.evaluate(c, '[{"action":"y"},{"action":"y"},{"action":"y"}]') AS "3 of another"
FROM (VALUES (1, 'seen'), (2, 'not seen'), (3, 'count_gte'), (4, 'count_lte'), (5, 'count_gt'),
             (6, 'count_lt'), (7, 'count_eq')) o(i, op),
     LATERAL (SELECT CASE WHEN op LIKE 'count%'
                          THEN jsonb_build_array(jsonb_build_object('fact', 'x', 'operator', op, 'value', 2))
                          ELSE jsonb_build_array(jsonb_build_object('fact', 'x', 'operator', op)) END::witn.condition AS c) l
ORDER BY i;

-- count 0: count_eq 0 is "not seen"; count_gte 0 always holds; count_lt 0 never does.
SELECT op, witn.evaluate(c, '[]') AS "0 events", witn.evaluate(c, '[{"action":"x"}]') AS "1 event"
FROM (VALUES (1, 'count_gte'), (2, 'count_lte'), (3, 'count_gt'), (4, 'count_lt'), (5, 'count_eq')) o(i, op),
     LATERAL (SELECT jsonb_build_array(jsonb_build_object('fact', 'x', 'operator', op, 'value', 0))::witn.condition AS c) l
ORDER BY i;

-- Comparison and missing-value-allowed operators (threshold 4) by the latest value: no event,
-- an event without properties.value, and values below, at and above the threshold.
SELECT op, witn.evaluate(c, '[]') AS "no event",
       witn.evaluate(c, '[{"action":"x"}]') AS "no value",
       witn.evaluate(c, '[{"action":"x","properties":{"value":3.99}}]') AS "3.99",
       witn.evaluate(c, '[{"action":"x","properties":{"value":4}}]') AS "4",
       witn.evaluate(c, '[{"action":"x","properties":{"value":4.00}}]') AS "4.00",
       witn.evaluate(c, '[{"action":"x","properties":{"value":4.01}}]') AS "4.01"
FROM (VALUES (1, 'match'), (2, 'gte'), (3, 'lte'), (4, 'gt'), (5, 'lt'),
             (6, 'not gte'), (7, 'not lte'), (8, 'not gt'), (9, 'not lt')) o(i, op),
     LATERAL (SELECT jsonb_build_array(jsonb_build_object('fact', 'x', 'operator', op, 'value', 4))::witn.condition AS c) l
ORDER BY i;

-- ---------------------------------------------------------------------------------------------
-- Missing value and wrong type: an event that is present but has no usable value never
-- qualifies, for the not * operators too.
-- ---------------------------------------------------------------------------------------------
INSERT INTO scenario VALUES
('missing value', 1, 'gte: properties {}',               '[{"fact":"x","operator":"gte","value":4}]', '[{"action":"x","properties":{}}]', false),
('missing value', 2, 'gte: only an attribution',         '[{"fact":"x","operator":"gte","value":4}]', '[{"action":"x","properties":{"attribution":5}}]', false),
('missing value', 3, 'gte: value null',                  '[{"fact":"x","operator":"gte","value":4}]', '[{"action":"x","properties":{"value":null}}]', false),
('missing value', 4, 'not gte: value null',              '[{"fact":"x","operator":"not gte","value":4}]', '[{"action":"x","properties":{"value":null}}]', false),
('missing value', 5, 'not lte: no properties',           '[{"fact":"x","operator":"not lte","value":4}]', '[{"action":"x"}]', false),
('missing value', 6, 'not gt: value 3, then no value',   '[{"fact":"x","operator":"not gt","value":4}]',
 '[{"action":"x","properties":{"value":3}},{"action":"x"}]', false),
('missing value', 7, 'lt: no value, then value 3',       '[{"fact":"x","operator":"lt","value":4}]',
 '[{"action":"x"},{"action":"x","properties":{"value":3}}]', true),
('missing value', 8, 'match: value null',                '[{"fact":"x","operator":"match","value":"pass"}]', '[{"action":"x","properties":{"value":null}}]', false),
('missing value', 9, 'seen: event without a value still counts', '[{"fact":"x","operator":"seen"}]', '[{"action":"x"}]', true),
('wrong type', 1, 'gte 4: "5" is a string',              '[{"fact":"x","operator":"gte","value":4}]', '[{"action":"x","properties":{"value":"5"}}]', false),
('wrong type', 2, 'lt 4: true is not a number',          '[{"fact":"x","operator":"lt","value":4}]', '[{"action":"x","properties":{"value":true}}]', false),
('wrong type', 3, 'gt 4: [5] is an array',               '[{"fact":"x","operator":"gt","value":4}]', '[{"action":"x","properties":{"value":[5]}}]', false),
('wrong type', 4, 'lte 4: {"v": 3} is an object',        '[{"fact":"x","operator":"lte","value":4}]', '[{"action":"x","properties":{"value":{"v":3}}}]', false),
('wrong type', 5, 'not lte 3: "5" is a string',          '[{"fact":"x","operator":"not lte","value":3}]', '[{"action":"x","properties":{"value":"5"}}]', false),
('wrong type', 6, 'not gte 4: "3" is a string',          '[{"fact":"x","operator":"not gte","value":4}]', '[{"action":"x","properties":{"value":"3"}}]', false),
('wrong type', 7, 'match 4: "4" is a string',            '[{"fact":"x","operator":"match","value":4}]', '[{"action":"x","properties":{"value":"4"}}]', false),
('wrong type', 8, 'match "4": 4 is a number',            '[{"fact":"x","operator":"match","value":"4"}]', '[{"action":"x","properties":{"value":4}}]', false),
('wrong type', 9, 'match 4: 4.0 is the same number',     '[{"fact":"x","operator":"match","value":4}]', '[{"action":"x","properties":{"value":4.0}}]', true),
('wrong type', 10, 'match 4.0: 4 is the same number',    '[{"fact":"x","operator":"match","value":4.0}]', '[{"action":"x","properties":{"value":4}}]', true),
('wrong type', 11, 'match 100: 1e2 is the same number',  '[{"fact":"x","operator":"match","value":100}]', '[{"action":"x","properties":{"value":1e2}}]', true),
('wrong type', 12, 'match 0: -0 is the same number',     '[{"fact":"x","operator":"match","value":0}]', '[{"action":"x","properties":{"value":-0}}]', true),
('wrong type', 13, 'match true: true',                   '[{"fact":"x","operator":"match","value":true}]', '[{"action":"x","properties":{"value":true}}]', true),
('wrong type', 14, 'match true: "true" is a string',     '[{"fact":"x","operator":"match","value":true}]', '[{"action":"x","properties":{"value":"true"}}]', false),
('wrong type', 15, 'match true: 1 is a number',          '[{"fact":"x","operator":"match","value":true}]', '[{"action":"x","properties":{"value":1}}]', false),
('wrong type', 16, 'match true: false',                  '[{"fact":"x","operator":"match","value":true}]', '[{"action":"x","properties":{"value":false}}]', false),
('wrong type', 17, 'match false: false',                 '[{"fact":"x","operator":"match","value":false}]', '[{"action":"x","properties":{"value":false}}]', true),
('wrong type', 18, 'match false: null',                  '[{"fact":"x","operator":"match","value":false}]', '[{"action":"x","properties":{"value":null}}]', false),
('wrong type', 19, 'match false: 0',                     '[{"fact":"x","operator":"match","value":false}]', '[{"action":"x","properties":{"value":0}}]', false),
('wrong type', 20, 'match "": the empty string',         '[{"fact":"x","operator":"match","value":""}]', '[{"action":"x","properties":{"value":""}}]', true),
('wrong type', 21, 'match "": no value',                 '[{"fact":"x","operator":"match","value":""}]', '[{"action":"x"}]', false),
('wrong type', 22, 'match "pass": ["pass"]',             '[{"fact":"x","operator":"match","value":"pass"}]', '[{"action":"x","properties":{"value":["pass"]}}]', false),
('wrong type', 23, 'match "pass": "pass " (no trimming)', '[{"fact":"x","operator":"match","value":"pass"}]', '[{"action":"x","properties":{"value":"pass "}}]', false),
('wrong type', 24, 'match "é": "\u00e9" is the same string', '[{"fact":"x","operator":"match","value":"é"}]', '[{"action":"x","properties":{"value":"\u00e9"}}]', true);

SELECT topic, n, what, expected, witn.evaluate(condition, events) AS result
FROM scenario WHERE topic IN ('missing value', 'wrong type') ORDER BY topic, n;

-- ---------------------------------------------------------------------------------------------
-- Latest value by occurred_at, ties by arrival; every occurrence counts.
-- ---------------------------------------------------------------------------------------------
INSERT INTO scenario VALUES
('latest value', 1, '5 at 10:00, then 2 back-dated to 09:00: 5 is latest',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T09:00:00Z","properties":{"value":2}}]', true),
('latest value', 2, '2 at 10:00, then 5 back-dated to 09:00: 2 is latest',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":2}},
   {"action":"csat","occurred_at":"2024-05-01T09:00:00Z","properties":{"value":5}}]', false),
('latest value', 3, '2 at 09:00, then 5 at 10:00',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T09:00:00Z","properties":{"value":2}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":5}}]', true),
('latest value', 4, 'same occurred_at: the later arrival (2) wins',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":2}}]', false),
('latest value', 5, 'same occurred_at: the later arrival (5) wins',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":2}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":5}}]', true),
('latest value', 6, 'same instant in two offsets: the later arrival wins',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T12:00:00+02:00","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":2}}]', false),
('latest value', 7, 'offsets compared as instants: 09:30Z is after 11:00+02:00',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T09:30:00Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T11:00:00+02:00","properties":{"value":2}}]', true),
('latest value', 8, 'microseconds decide',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00.000002Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00.000001Z","properties":{"value":2}}]', true),
('latest value', 9, 'no occurred_at anywhere: arrival order',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","properties":{"value":5}},{"action":"csat","properties":{"value":2}}]', false),
('latest value', 10, 'a back-dated event without a value does not hide the latest value',
 '[{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"csat","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T09:00:00Z"}]', true),
('latest value', 11, 'a newer event without a value hides the older value',
 '[{"fact":"csat","operator":"not lte","value":3}]',
 '[{"action":"csat","occurred_at":"2024-05-01T09:00:00Z","properties":{"value":5}},
   {"action":"csat","occurred_at":"2024-05-01T10:00:00Z"}]', false),
('latest value', 12, 'latest is per action: another action''s newer value is ignored',
 '[{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","occurred_at":"2024-05-01T09:00:00Z","properties":{"value":5}},
   {"action":"nps","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":1}}]', true),
('count', 1, 'identical events are all counted (no dedup)',
 '[{"fact":"warning","operator":"count_eq","value":3}]',
 '[{"action":"warning","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":1}},
   {"action":"warning","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":1}},
   {"action":"warning","occurred_at":"2024-05-01T10:00:00Z","properties":{"value":1}}]', true),
('count', 2, 'back-dated events count too',
 '[{"fact":"warning","operator":"count_eq","value":2}]',
 '[{"action":"warning","occurred_at":"2024-05-01T10:00:00Z"},
   {"action":"warning","occurred_at":"2023-01-01T00:00:00Z"}]', true),
('count', 3, 'events without a value count',
 '[{"fact":"warning","operator":"count_gt","value":1}]',
 '[{"action":"warning"},{"action":"warning","properties":{}}]', true),
('count', 4, 'count and latest value of the same action',
 '[{"fact":"csat","operator":"count_gte","value":2},{"fact":"csat","operator":"gte","value":4}]',
 '[{"action":"csat","properties":{"value":1}},{"action":"csat","properties":{"value":5}}]', true),
('count', 5, 'count_lt 2 fails on the second event',
 '[{"fact":"reminder","operator":"count_lt","value":2}]',
 '[{"action":"reminder"},{"action":"reminder"}]', false),
('count', 6, 'a thousand events',
 '[{"fact":"api_call","operator":"count_eq","value":1000}]',
 (SELECT jsonb_agg(jsonb_build_object('action', 'api_call')) FROM generate_series(1, 1000)), true);

SELECT topic, n, what, expected, witn.evaluate(condition, events) AS result
FROM scenario WHERE topic IN ('latest value', 'count') ORDER BY topic, n;

-- ---------------------------------------------------------------------------------------------
-- Numbers compare as exact decimals.
-- ---------------------------------------------------------------------------------------------
INSERT INTO scenario VALUES
('exact numbers', 1, '9007199254740993 gt 9007199254740992',
 '[{"fact":"x","operator":"gt","value":9007199254740992}]', '[{"action":"x","properties":{"value":9007199254740993}}]', true),
('exact numbers', 2, '9007199254740993 match 9007199254740992',
 '[{"fact":"x","operator":"match","value":9007199254740992}]', '[{"action":"x","properties":{"value":9007199254740993}}]', false),
('exact numbers', 3, '699.99999999999999999999 lt 700',
 '[{"fact":"x","operator":"lt","value":700}]', '[{"action":"x","properties":{"value":699.99999999999999999999}}]', true),
('exact numbers', 4, '699.99999999999999999999 gte 700',
 '[{"fact":"x","operator":"gte","value":700}]', '[{"action":"x","properties":{"value":699.99999999999999999999}}]', false),
('exact numbers', 5, '699.99999999999999999999 not gte 700',
 '[{"fact":"x","operator":"not gte","value":700}]', '[{"action":"x","properties":{"value":699.99999999999999999999}}]', true),
('exact numbers', 6, '0.30000000000000004 match 0.3',
 '[{"fact":"x","operator":"match","value":0.3}]', '[{"action":"x","properties":{"value":0.30000000000000004}}]', false),
('exact numbers', 7, '0.3 match 0.30',
 '[{"fact":"x","operator":"match","value":0.3}]', '[{"action":"x","properties":{"value":0.30}}]', true),
('exact numbers', 8, '1e-30 gt 0',
 '[{"fact":"x","operator":"gt","value":0}]', '[{"action":"x","properties":{"value":1e-30}}]', true),
('exact numbers', 9, '-0.0001 lt 0',
 '[{"fact":"x","operator":"lt","value":0}]', '[{"action":"x","properties":{"value":-0.0001}}]', true),
('exact numbers', 10, '-5 lt -4',
 '[{"fact":"x","operator":"lt","value":-4}]', '[{"action":"x","properties":{"value":-5}}]', true),
('exact numbers', 11, '1e400 gt 1e399',
 '[{"fact":"x","operator":"gt","value":1e399}]', '[{"action":"x","properties":{"value":1e400}}]', true),
('exact numbers', 12, '123456789012345678901234567890.000000000000000000001 gt 123456789012345678901234567890',
 '[{"fact":"x","operator":"gt","value":123456789012345678901234567890}]',
 '[{"action":"x","properties":{"value":123456789012345678901234567890.000000000000000000001}}]', true);

SELECT topic, n, what, expected, witn.evaluate(condition, events) AS result
FROM scenario WHERE topic = 'exact numbers' ORDER BY n;

-- ---------------------------------------------------------------------------------------------
-- Input shapes that are accepted.
-- ---------------------------------------------------------------------------------------------
-- Full event payloads: keys other than action, properties and occurred_at are ignored.
SELECT witn.evaluate('[{"fact":"csat","operator":"gte","value":4}]',
    '[{"key":"t-1","customer_key":"acme","agent_key":"support","action":"csat","idempotency_key":"k1",
       "occurred_at":"2024-05-01T10:00:00Z","properties":{"value":4.8,"attribution":0.8,"comment":"great"}}]');
-- A jsonb condition needs an explicit cast (the jsonb -> condition cast is for assignment).
SELECT witn.evaluate('[{"fact":"a","operator":"seen"}]'::jsonb::witn.condition, '[{"action":"a"}]');
-- NULL in, NULL out.
SELECT witn.evaluate(NULL, '[]') IS NULL AS null_condition, witn.evaluate('[]', NULL) IS NULL AS null_events;
-- Every scenario above answers what it expects.
SELECT topic, n, what FROM scenario
WHERE witn.evaluate(condition, events) IS DISTINCT FROM expected ORDER BY topic, n;

-- ---------------------------------------------------------------------------------------------
-- Errors for bad events input, as psql prints them, then every one with its SQLSTATE.
-- ---------------------------------------------------------------------------------------------
SELECT witn.evaluate('[]', '{"action":"a"}');
SELECT witn.evaluate('[]', '[{"action":"a"},{"properties":{"value":1}}]');
SELECT witn.evaluate('[{"fact":"a","operator":"seen"}]', '[{"action":"a","occurred_at":"yesterday-ish"}]');
-- A bad condition literal fails as the condition type's input does.
SELECT witn.evaluate('[{"type":"a","operator":"seen"}]', '[]');

CREATE TEMP TABLE bad_events (n int PRIMARY KEY, what text, events text);
INSERT INTO bad_events VALUES
    (1,  'not an array: an object',      '{"action": "a"}'),
    (2,  'not an array: a number',       '5'),
    (3,  'not an array: a string',       '"a"'),
    (4,  'not an array: null',           'null'),
    (5,  'element a number',             '[5]'),
    (6,  'element a string',             '["a"]'),
    (7,  'element an array',             '[["a"]]'),
    (8,  'element null',                 '[null]'),
    (9,  'second element not an object', '[{"action": "a"}, 1]'),
    (10, 'missing action',               '[{"properties": {"value": 1}}]'),
    (11, 'empty action',                 '[{"action": ""}]'),
    (12, 'action a number',              '[{"action": 1}]'),
    (13, 'action null',                  '[{"action": null}]'),
    (14, 'missing action in [2]',        '[{"action": "a"}, {"action": "b"}, {}]'),
    (15, 'occurred_at not a timestamp',  '[{"action": "a", "occurred_at": "yesterday-ish"}]'),
    (16, 'occurred_at a number',         '[{"action": "a", "occurred_at": 1714557600}]'),
    (17, 'occurred_at null',             '[{"action": "a", "occurred_at": null}]'),
    (18, 'occurred_at infinity',         '[{"action": "a", "occurred_at": "infinity"}]'),
    (19, 'properties an array',          '[{"action": "a", "properties": [1]}]'),
    (20, 'properties a string',          '[{"action": "a", "properties": "x"}]'),
    (21, 'properties null',              '[{"action": "a", "properties": null}]'),
    (22, 'negative attribution',         '[{"action": "a", "properties": {"attribution": -1}}]'),
    (23, 'negative attribution in [1]',  '[{"action": "a"}, {"action": "a", "properties": {"attribution": -0.5}}]'),
    (24, 'attribution a string',         '[{"action": "a", "properties": {"attribution": "1"}}]'),
    (25, 'attribution null',             '[{"action": "a", "properties": {"attribution": null}}]');

-- Negative attributions (22, 23) have only their SQLSTATE pinned, below: their message should
-- name the event's path ([1].properties.attribution) as the other cases do.
\x on
SELECT n, what, e.code, e.message, e.detail
FROM bad_events, pg_temp.error_of(format('SELECT witn.evaluate(%L, %L::jsonb)', '[{"fact":"a","operator":"seen"}]', events)) e
WHERE n NOT IN (22, 23)
ORDER BY n;
\x off

-- Every one is WT001 (VALIDATION_ERROR).
SELECT e.code, count(*)
FROM bad_events, pg_temp.error_of(format('SELECT witn.evaluate(%L, %L::jsonb)', '[{"fact":"a","operator":"seen"}]', events)) e
GROUP BY e.code;
