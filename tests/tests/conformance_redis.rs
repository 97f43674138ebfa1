//! The hot-storage conformance suite on the machine's Redis.

use hoard_tests::services::redis_storage;

hoard_tests::hot_conformance_suite!(redis_storage);
