//! The conformance suite, unchanged, through the outage layer with every
//! write taking the outbox and replaying into the machine's Redis and a
//! fresh PostgreSQL database: queueing, replay, the local view and op-id
//! deduplication on real servers. Own test binary: the failpoint that
//! forces the queue is global to a process.

use hoard_tests::services::queued_storage;

hoard_tests::hot_conformance_suite!(queued_storage);
hoard_tests::cold_conformance_suite!(queued_storage);
