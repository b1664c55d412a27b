-- One database per service on the compose PostgreSQL server. The postgres
-- image runs this once, when it initialises an empty data volume; to run it
-- again, remove the volume (`docker compose down -v` deletes all data).
-- Tables come later, from each service's migrations (the `migrate` service).
CREATE DATABASE portal_auth;
CREATE DATABASE portal_clients;
CREATE DATABASE portal_workflows;
CREATE DATABASE portal_billing;
CREATE DATABASE portal_support;
