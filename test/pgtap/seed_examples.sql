-- The product's example conditions, end to end: events in through INSERT INTO witn.events,
-- the outcome's status and scheduled resolution after each, then settlement and the invoice.
BEGIN;
SELECT plan(65);

-- ---------------------------------------------------------------------------------------------
-- One customer on a USD rate card; one agent per example condition of the product documents.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.rate_cards (key, name, currency) VALUES ('seed_usd', 'Seed examples', 'USD');
INSERT INTO witn.customers (key, name, rate_card_key) VALUES ('acme', 'Acme', 'seed_usd');
INSERT INTO witn.agents (key, condition) VALUES
    ('support', '[{"fact": "agent_replied", "operator": "seen"},
                  {"fact": "escalated", "operator": "not seen"},
                  {"fact": "reopened", "operator": "not seen"},
                  {"fact": "csat", "operator": "not lte", "value": 3}]'),
    ('both_sign', '[{"fact": "signed_by_buyer", "operator": "seen"},
                    {"fact": "signed_by_seller", "operator": "seen"}]'),
    ('not_revoked', '[{"fact": "signed", "operator": "seen"},
                      {"fact": "revoked", "operator": "not seen"}]'),
    ('min_score', '[{"fact": "csat", "operator": "gte", "value": 4}]'),
    ('inspection', '[{"fact": "inspection", "operator": "match", "value": "pass"}]'),
    ('metered', '[{"fact": "api_call", "operator": "seen"}]'),
    ('verification', '[{"fact": "identity_check", "operator": "match", "value": "verified"},
                       {"fact": "credit_score", "operator": "gte", "value": 700},
                       {"fact": "document_signed", "operator": "seen"}]'),
    ('warnings', '[{"fact": "warning", "operator": "count_gte", "value": 3}]'),
    ('always', '[]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('seed_usd', 'support', 2.50), ('seed_usd', 'both_sign', 40), ('seed_usd', 'not_revoked', 15),
    ('seed_usd', 'min_score', 3), ('seed_usd', 'inspection', 7.25), ('seed_usd', 'metered', 10),
    ('seed_usd', 'verification', 120), ('seed_usd', 'warnings', 0.5), ('seed_usd', 'always', 1);

-- "STATUS/SCHEDULED" of acme's outcome `key`, e.g. 'PENDING/CONFIRMED', 'OPEN/-'.
CREATE FUNCTION pg_temp.state(outcome_key text) RETURNS text LANGUAGE sql AS $$
    SELECT o.status || '/' || coalesce(o.scheduled_resolution::text, '-')
      FROM witn.outcomes o WHERE o.customer_key = 'acme' AND o.key = outcome_key
$$;

-- Events are spaced a minute apart, starting ten minutes ago: every outcome is still open when
-- its last event arrives, and settles 72 hours (the default period) after it.

-- ---------------------------------------------------------------------------------------------
-- Support ticket: agent_replied seen, escalated not seen, reopened not seen, csat not lte 3.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'ticket_good_csat', 'agent_replied', 'support', now() - interval '10 minutes');
SELECT is(pg_temp.state('ticket_good_csat'), 'PENDING/CONFIRMED',
          'support ticket: the agent''s reply alone satisfies the condition (no CSAT is no bad CSAT)');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('acme', 'ticket_good_csat', 'csat', '{"value": 5}', now() - interval '9 minutes');
SELECT is(pg_temp.state('ticket_good_csat'), 'PENDING/CONFIRMED',
          'support ticket: a CSAT of 5 keeps it scheduled to confirm');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'ticket_reopened', 'agent_replied', 'support', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'ticket_reopened', 'reopened', now() - interval '9 minutes');
SELECT is(pg_temp.state('ticket_reopened'), 'PENDING/FAILED',
          'support ticket: reopened after the reply turns the scheduled resolution to FAILED');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'ticket_low_csat', 'agent_replied', 'support', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('acme', 'ticket_low_csat', 'csat', '{"value": 2}', now() - interval '9 minutes');
SELECT is(pg_temp.state('ticket_low_csat'), 'PENDING/FAILED',
          'support ticket: a CSAT of 2 (lte 3) schedules FAILED');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'ticket_no_csat', 'agent_replied', 'support', now() - interval '10 minutes');
SELECT is(pg_temp.state('ticket_no_csat'), 'PENDING/CONFIRMED',
          'support ticket: the customer disappears without a CSAT: scheduled to confirm');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'ticket_escalated', 'escalated', 'support', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'ticket_escalated', 'agent_replied', now() - interval '9 minutes');
SELECT is(pg_temp.state('ticket_escalated'), 'OPEN/-',
          'support ticket: escalated before the reply: the condition never held, stays OPEN');

-- ---------------------------------------------------------------------------------------------
-- Both parties must sign.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'deal_both', 'signed_by_buyer', 'both_sign', now() - interval '10 minutes');
SELECT is(pg_temp.state('deal_both'), 'OPEN/-', 'both sign: the buyer''s signature alone leaves it OPEN');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'deal_both', 'signed_by_seller', now() - interval '9 minutes');
SELECT is(pg_temp.state('deal_both'), 'PENDING/CONFIRMED', 'both sign: the seller''s signature makes it PENDING');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'deal_one', 'signed_by_seller', 'both_sign', now() - interval '10 minutes');
SELECT is(pg_temp.state('deal_one'), 'OPEN/-', 'both sign: one signature only stays OPEN');

-- ---------------------------------------------------------------------------------------------
-- Signed but not revoked.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'contract_kept', 'signed', 'not_revoked', now() - interval '10 minutes');
SELECT is(pg_temp.state('contract_kept'), 'PENDING/CONFIRMED', 'signed, not revoked: PENDING to confirm');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'contract_revoked', 'signed', 'not_revoked', now() - interval '10 minutes');
SELECT is(pg_temp.state('contract_revoked'), 'PENDING/CONFIRMED', 'signed then revoked: PENDING after the signature');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'contract_revoked', 'revoked', now() - interval '9 minutes');
SELECT is(pg_temp.state('contract_revoked'), 'PENDING/FAILED',
          'signed then revoked: still PENDING, scheduled FAILED (PENDING never goes back to OPEN)');

-- ---------------------------------------------------------------------------------------------
-- Minimum score: csat gte 4, submitted with value 4.8 and attribution 0.8.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'score_high', 'csat', 'min_score', '{"value": 4.8, "attribution": 0.8}', now() - interval '10 minutes');
SELECT is(pg_temp.state('score_high'), 'PENDING/CONFIRMED', 'minimum score: 4.8 gte 4 makes it PENDING');
SELECT is((SELECT quantity FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'score_high'), 0.8::numeric,
          'minimum score: the billing quantity is the attribution 0.8, not the value');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'score_low', 'csat', 'min_score', '{"value": 3.99}', now() - interval '10 minutes');
SELECT is(pg_temp.state('score_low'), 'OPEN/-', 'minimum score: 3.99 is below 4, stays OPEN');

-- ---------------------------------------------------------------------------------------------
-- Inspection: match "pass".
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'inspection_pass', 'inspection', 'inspection', '{"value": "pass"}', now() - interval '10 minutes');
SELECT is(pg_temp.state('inspection_pass'), 'PENDING/CONFIRMED', 'inspection: "pass" matches');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'inspection_fail', 'inspection', 'inspection', '{"value": "fail"}', now() - interval '10 minutes');
SELECT is(pg_temp.state('inspection_fail'), 'OPEN/-', 'inspection: "fail" does not match');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'inspection_redone', 'inspection', 'inspection', '{"value": "pass"}', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('acme', 'inspection_redone', 'inspection', '{"value": "fail"}', now() - interval '9 minutes');
SELECT is(pg_temp.state('inspection_redone'), 'PENDING/FAILED',
          'inspection: a later "fail" replaces "pass" (latest value only): scheduled FAILED');

-- ---------------------------------------------------------------------------------------------
-- Metered usage: api_call seen, attribution 1.2 at price 10 bills 12.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'acme:api:nov', 'api_call', 'metered', '{"attribution": 1.2}', now() - interval '10 minutes');
SELECT is(pg_temp.state('acme:api:nov'), 'PENDING/CONFIRMED', 'metered usage: the api_call is seen');
SELECT is((SELECT quantity FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'acme:api:nov'), 1.2::numeric,
          'metered usage: quantity 1.2');
SELECT is((SELECT unit_price FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'acme:api:nov'), 10::numeric,
          'metered usage: unit price 10 snapshotted from the rate card');

-- ---------------------------------------------------------------------------------------------
-- Multi-step verification: identity_check match "verified", credit_score gte 700, document_signed.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'loan_ok', 'identity_check', 'verification', '{"value": "verified"}', now() - interval '10 minutes');
SELECT is(pg_temp.state('loan_ok'), 'OPEN/-', 'verification: identity checked, OPEN');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('acme', 'loan_ok', 'credit_score', '{"value": 720}', now() - interval '9 minutes');
SELECT is(pg_temp.state('loan_ok'), 'OPEN/-', 'verification: credit score 720, still OPEN (no signature)');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'loan_ok', 'document_signed', now() - interval '8 minutes');
SELECT is(pg_temp.state('loan_ok'), 'PENDING/CONFIRMED', 'verification: the signature completes all three steps');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('acme', 'loan_low_score', 'identity_check', 'verification', '{"value": "verified"}', now() - interval '10 minutes'),
    ('acme', 'loan_low_score', 'credit_score', NULL, '{"value": 699.99999999999999999999}', now() - interval '9 minutes'),
    ('acme', 'loan_low_score', 'document_signed', NULL, '{}', now() - interval '8 minutes');
SELECT is(pg_temp.state('loan_low_score'), 'OPEN/-',
          'verification: a credit score of 699.99999999999999999999 is below 700 (exact decimals)');

-- ---------------------------------------------------------------------------------------------
-- Warnings: count_gte 3.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'noisy', 'warning', 'warnings', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'noisy', 'warning', now() - interval '9 minutes');
SELECT is(pg_temp.state('noisy'), 'OPEN/-', 'warnings: two warnings, OPEN');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'noisy', 'warning', now() - interval '8 minutes');
SELECT is(pg_temp.state('noisy'), 'PENDING/CONFIRMED', 'warnings: the third warning makes it PENDING');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'quiet', 'warning', 'warnings', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('acme', 'quiet', 'warning', now() - interval '9 minutes');

-- ---------------------------------------------------------------------------------------------
-- Empty condition [] holds from the first event.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'anything', 'started', 'always', now() - interval '10 minutes');
SELECT is(pg_temp.state('anything'), 'PENDING/CONFIRMED', 'empty condition: the first event makes it PENDING');

-- ---------------------------------------------------------------------------------------------
-- Before settlement: every outcome settles 72 hours after its latest event, nothing is due yet.
-- ---------------------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM witn.outcomes WHERE customer_key = 'acme'), 20::bigint, '20 outcomes opened');
SELECT is_empty($$
    SELECT o.key FROM witn.outcomes o
     WHERE o.customer_key = 'acme'
       AND o.settles_at <> (SELECT max(e.occurred_at) FROM witn.events e
                             WHERE e.customer_key = o.customer_key AND e.key = o.key) + interval '72 hours'
$$, 'every outcome settles 72 hours after its latest event');
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now()) $$,
                  $$ VALUES (0::bigint, 0::bigint, 0::bigint) $$,
                  'settle(now()) resolves nothing: no outcome is due');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'verify() finds no difference before settlement');

-- ---------------------------------------------------------------------------------------------
-- Settlement: four days on, everything is due.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '4 days') $$,
                  $$ VALUES (10::bigint, 10::bigint, 0::bigint) $$,
                  'settlement four days later: 10 confirmed, 10 failed, no errors');

SELECT is(pg_temp.state('ticket_good_csat'), 'CONFIRMED/CONFIRMED', 'support ticket with good CSAT: CONFIRMED');
SELECT is(pg_temp.state('ticket_reopened'), 'FAILED/FAILED', 'support ticket reopened: FAILED');
SELECT is(pg_temp.state('ticket_low_csat'), 'FAILED/FAILED', 'support ticket with low CSAT: FAILED');
SELECT is(pg_temp.state('ticket_no_csat'), 'CONFIRMED/CONFIRMED', 'support ticket without CSAT: CONFIRMED');
SELECT is(pg_temp.state('ticket_escalated'), 'FAILED/-', 'support ticket escalated: OPEN at settlement, FAILED');
SELECT is(pg_temp.state('deal_both'), 'CONFIRMED/CONFIRMED', 'both signed: CONFIRMED');
SELECT is(pg_temp.state('deal_one'), 'FAILED/-', 'one signature only: OPEN at settlement, FAILED');
SELECT is(pg_temp.state('contract_kept'), 'CONFIRMED/CONFIRMED', 'signed, not revoked: CONFIRMED');
SELECT is(pg_temp.state('contract_revoked'), 'FAILED/FAILED', 'signed then revoked: FAILED');
SELECT is(pg_temp.state('score_high'), 'CONFIRMED/CONFIRMED', 'minimum score met: CONFIRMED');
SELECT is(pg_temp.state('score_low'), 'FAILED/-', 'minimum score missed: FAILED');
SELECT is(pg_temp.state('inspection_pass'), 'CONFIRMED/CONFIRMED', 'inspection pass: CONFIRMED');
SELECT is(pg_temp.state('inspection_fail'), 'FAILED/-', 'inspection fail: FAILED');
SELECT is(pg_temp.state('inspection_redone'), 'FAILED/FAILED', 'inspection pass then fail: FAILED');
SELECT is(pg_temp.state('acme:api:nov'), 'CONFIRMED/CONFIRMED', 'metered usage: CONFIRMED');
SELECT is(pg_temp.state('loan_ok'), 'CONFIRMED/CONFIRMED', 'verification complete: CONFIRMED');
SELECT is(pg_temp.state('loan_low_score'), 'FAILED/-', 'verification with a low score: FAILED');
SELECT is(pg_temp.state('noisy'), 'CONFIRMED/CONFIRMED', 'three warnings: CONFIRMED');
SELECT is(pg_temp.state('quiet'), 'FAILED/-', 'two warnings: FAILED');
SELECT is(pg_temp.state('anything'), 'CONFIRMED/CONFIRMED', 'empty condition: CONFIRMED');

SELECT is_empty($$
    SELECT key FROM witn.outcomes WHERE customer_key = 'acme' AND resolved_at IS DISTINCT FROM settles_at
$$, 'resolved_at = settles_at for every outcome: when it was decided, not when settle() ran');

-- ---------------------------------------------------------------------------------------------
-- Invoice lines: one per confirmed outcome, amount = unit price x quantity, exact.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq($$
    SELECT outcome_key, agent_key, quantity, unit_price, amount, currency
      FROM witn.invoice_lines WHERE customer_key = 'acme' ORDER BY outcome_key
$$, $$ VALUES
    ('acme:api:nov', 'metered', 1.2, 10::numeric, 12::numeric, 'USD'),
    ('anything', 'always', 1, 1, 1, 'USD'),
    ('contract_kept', 'not_revoked', 1, 15, 15, 'USD'),
    ('deal_both', 'both_sign', 1, 40, 40, 'USD'),
    ('inspection_pass', 'inspection', 1, 7.25, 7.25, 'USD'),
    ('loan_ok', 'verification', 1, 120, 120, 'USD'),
    ('noisy', 'warnings', 1, 0.5, 0.5, 'USD'),
    ('score_high', 'min_score', 0.8, 3, 2.4, 'USD'),
    ('ticket_good_csat', 'support', 1, 2.50, 2.50, 'USD'),
    ('ticket_no_csat', 'support', 1, 2.50, 2.50, 'USD')
$$, 'invoice lines: exactly the confirmed outcomes, amount = unit_price x quantity');
SELECT is((SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'acme'),
          (SELECT count(*) FROM witn.outcomes WHERE customer_key = 'acme' AND status = 'CONFIRMED'),
          'one invoice line per confirmed outcome');
SELECT is((SELECT amount FROM witn.invoice_lines WHERE customer_key = 'acme' AND outcome_key = 'acme:api:nov'),
          12.0::numeric, 'metered usage: 10 x 1.2 = 12');
SELECT is_empty($$
    SELECT l.outcome_key FROM witn.invoice_lines l
      JOIN witn.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id
     WHERE l.resolved_at <> o.resolved_at OR l.amount <> o.unit_price * o.quantity
$$, 'every line carries its outcome''s resolved_at and unit_price x quantity');
SELECT is((SELECT sum(amount) FROM witn.invoices WHERE customer_key = 'acme'),
          (SELECT round(sum(amount), 2) FROM witn.invoice_lines WHERE customer_key = 'acme'),
          'the invoice total is the sum of the lines, rounded to cents');

-- ---------------------------------------------------------------------------------------------
-- Notifications: one per resolution, with the webhook's shape.
-- ---------------------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM witn.notifications WHERE customer_key = 'acme'), 20::bigint,
          'one notification per resolved outcome');
SELECT is_empty($$
    SELECT o.key FROM witn.outcomes o
      JOIN witn.notifications n ON n.customer_key = o.customer_key AND n.outcome_id = o.id
     WHERE n.kind <> CASE o.status WHEN 'CONFIRMED' THEN 'outcome_succeed' ELSE 'outcome_failed' END
        OR n.payload ->> 'type' <> n.kind
        OR n.payload ->> 'id' <> 'ntf_' || o.id
        OR n.payload -> 'data' ->> 'outcome_key' <> o.key
        OR n.payload -> 'data' ->> 'status' <> o.status::text
$$, 'each notification names its outcome, its status and the matching type');
SELECT is((SELECT (payload -> 'data' ->> 'amount')::numeric FROM witn.notifications n
             JOIN witn.outcomes o ON o.customer_key = n.customer_key AND o.id = n.outcome_id
            WHERE o.customer_key = 'acme' AND o.key = 'score_high'),
          2.4::numeric, 'the confirmation notification carries the amount 3 x 0.8 = 2.4');

-- ---------------------------------------------------------------------------------------------
-- Settling again does nothing; every outcome still replays to its stored state.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '30 days') $$,
                  $$ VALUES (0::bigint, 0::bigint, 0::bigint) $$,
                  'a second settlement finds nothing to do');
SELECT is((SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'acme'), 10::bigint,
          'still exactly 10 invoice lines');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'verify() finds no difference after settlement');

SELECT * FROM finish();
ROLLBACK;
