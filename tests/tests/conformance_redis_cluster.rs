//! The hot-storage conformance suite on a three-master Redis Cluster that
//! each test starts on free ports.

use hoard_tests::services::redis_cluster_storage;

hoard_tests::hot_conformance_suite!(redis_cluster_storage);
