
-- ---------------------------------------------------------------------------------------------
-- pg_dump: the tables below hold user data, so pg_dump dumps their rows (and their id
-- sequences' positions) although they belong to the extension. Restored witn.events rows carry
-- their original received_at; the events trigger recognises them and does not apply them again
-- (their effect is already in the restored witn.outcomes).
-- ---------------------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.currencies', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rate_cards', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.agents', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rate_card_prices', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.invoice_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.settlement_errors', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.closed_periods', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.invoice_lines_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.notifications_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.settlement_errors_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries_id_seq', '');
