//! The cold-storage conformance suite on the machine's PostgreSQL, a fresh
//! database per test.

use hoard_tests::services::postgres_storage;

hoard_tests::cold_conformance_suite!(postgres_storage);
