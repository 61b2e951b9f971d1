-- witn.describe(condition): the condition in words, with the dashboard labels, leaves joined
-- by AND.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
RESET client_min_messages;

-- ---------------------------------------------------------------------------------------------
-- The seed examples.
-- ---------------------------------------------------------------------------------------------
SELECT example, witn.describe(condition::witn.condition) AS description
FROM (VALUES
    (1, 'negative signals', '[{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}]'),
    (2, 'single event', '[{"fact":"downloaded","operator":"seen"}]'),
    (3, 'both parties sign', '[{"fact":"signed_by_buyer","operator":"seen"},{"fact":"signed_by_seller","operator":"seen"}]'),
    (4, 'signed not revoked', '[{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}]'),
    (5, 'minimum score', '[{"fact":"csat","operator":"gte","value":4}]'),
    (6, 'inspection match', '[{"fact":"inspection","operator":"match","value":"pass"}]'),
    (7, 'metered usage', '[{"fact":"api_call","operator":"seen"}]'),
    (8, 'multi-step verification', '[{"fact":"identity_check","operator":"match","value":"verified"},{"fact":"credit_score","operator":"gte","value":700},{"fact":"document_signed","operator":"seen"}]'),
    (9, 'seen at least N times', '[{"fact":"warning","operator":"count_gte","value":3}]'),
    (10, 'empty condition', '[]')
) e(n, example, condition)
ORDER BY n;

-- Two leaves as the function's comment shows them.
SELECT witn.describe('[{"fact":"csat","operator":"not lte","value":3},{"fact":"escalated","operator":"not seen"}]');

-- ---------------------------------------------------------------------------------------------
-- Each operator's dashboard label.
-- ---------------------------------------------------------------------------------------------
SELECT op, witn.describe(c) AS description
FROM (VALUES (1, 'seen'), (2, 'not seen'), (3, 'count_gte'), (4, 'count_lte'), (5, 'count_gt'),
             (6, 'count_lt'), (7, 'count_eq'), (8, 'match'), (9, 'gte'), (10, 'lte'), (11, 'gt'),
             (12, 'lt'), (13, 'not gte'), (14, 'not lte'), (15, 'not gt'), (16, 'not lt')) o(i, op),
     LATERAL (SELECT CASE WHEN op IN ('seen', 'not seen')
                          THEN jsonb_build_array(jsonb_build_object('fact', 'warning', 'operator', op))
                          ELSE jsonb_build_array(jsonb_build_object('fact', 'warning', 'operator', op, 'value', 3)) END::witn.condition AS c) l
ORDER BY i;

-- ---------------------------------------------------------------------------------------------
-- Values are written as canonical JSON: numbers keep their scale, strings are quoted.
-- ---------------------------------------------------------------------------------------------
SELECT input, witn.describe(input::witn.condition) AS description
FROM (VALUES
    (1, '[{"fact":"csat","operator":"gte","value":4.0}]'),
    (2, '[{"fact":"csat","operator":"gte","value":4.50}]'),
    (3, '[{"fact":"csat","operator":"lt","value":1e3}]'),
    (4, '[{"fact":"balance","operator":"not lt","value":-0.25}]'),
    (5, '[{"fact":"credit_score","operator":"lt","value":699.99999999999999999999}]'),
    (6, '[{"fact":"n","operator":"gt","value":9007199254740993}]'),
    (7, '[{"fact":"inspection","operator":"match","value":4}]'),
    (8, '[{"fact":"inspection","operator":"match","value":"4"}]'),
    (9, '[{"fact":"inspection","operator":"match","value":true}]'),
    (10, '[{"fact":"inspection","operator":"match","value":false}]'),
    (11, '[{"fact":"inspection","operator":"match","value":""}]'),
    (12, '[{"fact":"inspection","operator":"match","value":"say \"ok\""}]'),
    (13, '[{"fact":"warning","operator":"count_eq","value":0}]'),
    (14, '[{"fact":"warning","operator":"count_gte","value":1e1}]'),
    (15, '[{"fact":"warning","operator":"count_lte","value":9223372036854775807}]'),
    (16, '[{"fact":"café","operator":"seen"}]'),
    (17, '[{"fact":"a","operator":"seen"},{"fact":"a","operator":"seen"}]')
) v(n, input)
ORDER BY n;

-- A stored condition describes the same as its literal.
CREATE TEMP TABLE contract (key text PRIMARY KEY, condition witn.condition NOT NULL);
INSERT INTO contract VALUES
    ('support', '[{"fact":"agent_replied","operator":"seen"},{"fact":"csat","operator":"not lte","value":3}]'),
    ('always', '[]');
SELECT key, witn.describe(condition) FROM contract ORDER BY key;

-- NULL in, NULL out; an invalid literal fails as the condition type's input does.
SELECT witn.describe(NULL) IS NULL AS is_null;
SELECT witn.describe('[{"fact":"csat","operator":"gte"}]');
