//! Every private server starts on its own ports of 127.0.0.1, answers, and is gone when
//! dropped. A missing program fails the test with what to install.

use store_testkit::servers::mariadb::PrivateMariadb;
use store_testkit::servers::nats::{NatsCluster, PrivateNats};
use store_testkit::servers::postgres::PrivatePostgres;
use store_testkit::servers::redis::{answers_ping, PrivateRedis, PrivateSentinel, RedisCluster};

/// The machine's shared servers, which no private server may take.
const SHARED_PORTS: [u16; 5] = [6379, 5432, 4222, 3306, 26379];

fn private(port: u16) -> u16 {
    assert!(
        !SHARED_PORTS.contains(&port),
        "a private server took the shared port {port}"
    );
    port
}

#[test]
fn a_private_redis_answers_and_restarts_empty() {
    let mut redis = PrivateRedis::start();
    let port = private(redis.port());
    assert_eq!(redis.command(&["SET", "k", "v"]), Ok("OK".to_owned()));
    assert_eq!(redis.command(&["GET", "k"]), Ok("v".to_owned()));
    redis.kill();
    assert!(!answers_ping(port), "a killed server still answers");
    redis.restart();
    assert_eq!(redis.command(&["GET", "k"]), Ok("(nil)".to_owned()));
    drop(redis);
    assert!(!answers_ping(port), "a dropped server still answers");
}

#[test]
fn a_redis_replica_follows_its_primary_and_can_be_promoted() {
    let primary = PrivateRedis::start();
    let replica = PrivateRedis::start_replica(&primary);
    private(replica.port());
    assert_eq!(replica.role(), "slave");
    assert_eq!(primary.command(&["SET", "k", "v"]), Ok("OK".to_owned()));
    // WAIT returns how many replicas acknowledged the write.
    assert_eq!(primary.command(&["WAIT", "1", "10000"]), Ok("1".to_owned()));
    assert_eq!(replica.command(&["GET", "k"]), Ok("v".to_owned()));
    let refused = replica.command(&["SET", "k", "w"]);
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("READONLY")),
        "a replica took a write: {refused:?}"
    );
    replica.promote();
    assert_eq!(replica.role(), "master");
    assert_eq!(replica.command(&["SET", "k", "w"]), Ok("OK".to_owned()));
}

#[test]
fn a_redis_cluster_of_three_primaries_and_three_replicas_serves_every_slot() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    for &port in &ports {
        private(port);
    }
    assert_eq!(cluster.primaries().len(), 3, "{ports:?}");
    for index in 0..ports.len() {
        let info = cluster.node(index).command(&["CLUSTER", "INFO"]).unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_size:3"), "{info}");
    }
    // A key is written on the primary that owns its slot; any other node redirects.
    let slot: u16 = cluster
        .node(0)
        .command(&["CLUSTER", "KEYSLOT", "{store}k"])
        .unwrap()
        .parse()
        .unwrap();
    let mut written = 0;
    for &port in &cluster.primaries() {
        let node = ports.iter().position(|&p| p == port).unwrap();
        match cluster.node(node).command(&["SET", "{store}k", "v"]) {
            Ok(answer) => {
                assert_eq!(answer, "OK");
                written += 1;
            }
            Err(moved) => assert!(moved.starts_with(&format!("MOVED {slot} ")), "{moved}"),
        }
    }
    assert_eq!(written, 1, "exactly one primary owns slot {slot}");
}

#[test]
fn a_sentinel_watches_a_primary() {
    let primary = PrivateRedis::start();
    let _replica = PrivateRedis::start_replica(&primary);
    let sentinel = PrivateSentinel::start("main", &primary);
    private(sentinel.port());
    assert_eq!(sentinel.primary_port(), Some(primary.port()));
    assert_eq!(sentinel.command(&["PING"]), Ok("PONG".to_owned()));
    let masters = sentinel.command(&["SENTINEL", "MASTERS"]).unwrap();
    assert!(masters.lines().any(|l| l == "main"), "{masters}");
}

#[test]
fn a_postgres_standby_streams_from_its_primary_and_can_be_promoted() {
    let primary = PrivatePostgres::start().unwrap_or_else(|e| panic!("{e}"));
    private(primary.port());
    let standby = primary
        .start_standby("standby1")
        .unwrap_or_else(|e| panic!("{e}"));
    private(standby.port());
    assert!(standby.is_in_recovery().unwrap());
    assert!(!primary.is_in_recovery().unwrap());
    primary
        .psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
        .unwrap();
    standby.wait_for_replay(&primary).unwrap();
    assert_eq!(standby.psql("SELECT n FROM t").unwrap(), "1");
    assert!(standby.psql("INSERT INTO t VALUES (2)").is_err());
    let slots = primary
        .psql("SELECT slot_name, active FROM pg_replication_slots")
        .unwrap();
    assert_eq!(slots, "standby1|t");

    let timeline = |server: &PrivatePostgres| -> u32 {
        server
            .psql("SELECT timeline_id FROM pg_control_checkpoint()")
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = timeline(&standby);
    primary.stop(true).unwrap();
    standby.promote().unwrap();
    assert!(!standby.is_in_recovery().unwrap());
    standby.psql("INSERT INTO t VALUES (2)").unwrap();
    standby.psql("CHECKPOINT").unwrap();
    assert!(
        timeline(&standby) > before,
        "a promotion starts a new timeline"
    );
}

#[test]
fn a_private_nats_server_has_jetstream() {
    let nats = PrivateNats::start();
    private(nats.port());
    assert!(nats.jetstream_answers());
    let created = nats
        .request(
            "$JS.API.STREAM.CREATE.orders",
            r#"{"name":"orders","subjects":["orders.>"],"storage":"file"}"#,
        )
        .unwrap();
    assert!(
        created.contains("stream_create_response") && !created.contains("\"error\""),
        "{created}"
    );
    let names = nats.request("$JS.API.STREAM.NAMES", "").unwrap();
    assert!(names.contains("\"orders\""), "{names}");
    assert!(nats
        .request("no.such.subject", "")
        .is_err_and(|e| e.contains("no responders")));
}

#[test]
fn a_nats_cluster_of_three_has_jetstream_on_every_node() {
    let cluster = NatsCluster::start();
    assert_eq!(cluster.urls().len(), 3);
    for index in 0..3 {
        private(cluster.node(index).port());
        assert!(cluster.node(index).jetstream_answers());
    }
    // A stream replicated on all three nodes needs the cluster.
    let created = cluster
        .node(0)
        .request(
            "$JS.API.STREAM.CREATE.orders",
            r#"{"name":"orders","subjects":["orders.>"],"storage":"file","num_replicas":3}"#,
        )
        .unwrap();
    assert!(
        created.contains("stream_create_response") && !created.contains("\"error\""),
        "{created}"
    );
    let info = cluster
        .node(2)
        .request("$JS.API.STREAM.INFO.orders", "")
        .unwrap();
    assert!(info.contains("\"replicas\""), "{info}");
}

#[test]
fn a_private_mariadb_answers_and_keeps_committed_rows_across_a_kill() {
    let mut db = PrivateMariadb::start();
    private(db.port());
    assert!(db.query("SELECT VERSION()").unwrap().contains("MariaDB"));
    assert_eq!(db.query("SELECT @@log_bin").unwrap(), "0");
    db.query("CREATE TABLE test.t (n INT) ENGINE=InnoDB; INSERT INTO test.t VALUES (7)")
        .unwrap();
    db.kill();
    assert!(db.query("SELECT 1").is_err(), "a killed server answers");
    db.restart();
    assert_eq!(db.query("SELECT n FROM test.t").unwrap(), "7");
}

#[test]
fn a_private_mariadb_with_the_binlog_logs_rows() {
    let db = PrivateMariadb::start_with_binlog();
    private(db.port());
    assert!(db.binlog());
    assert_eq!(
        db.query("SELECT @@log_bin, @@binlog_format, @@server_id")
            .unwrap(),
        "1\tROW\t1"
    );
    db.query("CREATE TABLE test.t (n INT); INSERT INTO test.t VALUES (1)")
        .unwrap();
    let logs = db.query("SHOW BINARY LOGS").unwrap();
    assert!(logs.contains("binlog.0"), "{logs}");
}
