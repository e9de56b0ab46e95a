//! The Kubernetes pool against a real kube-apiserver (started by tests/k8s/run.sh, which sets
//! JINA_NET_K8S_KUBECONFIG). Pods get IPs in 127.0.0.0/8 where real echo servers listen, so the tests
//! send real requests to the replicas the pool discovered. Without the variable every test says it
//! was skipped and returns.
#![cfg(feature = "k8s")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use jina_net::k8s::{client_from_kubeconfig, k8s_connection_pool, K8sOptions};
use jina_net::{ConnectionPool, ReplicaSet, SendOptions, To};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::serde_json::{json, Value};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

fn kubeconfig() -> Option<std::path::PathBuf> {
    match std::env::var_os("JINA_NET_K8S_KUBECONFIG") {
        Some(p) => Some(p.into()),
        None => {
            eprintln!("skipped: needs a real API server; run tests/k8s/run.sh");
            None
        }
    }
}

struct Cluster {
    client: Client,
    ns: String,
    pods: Api<Pod>,
}

impl Cluster {
    async fn new(ns: &str) -> Option<Cluster> {
        let path = kubeconfig()?;
        let client = client_from_kubeconfig(&path).await.expect("kubeconfig works");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        // a namespace being deleted cannot take new pods: wait until it is gone
        for _ in 0..200 {
            if namespaces.get_opt(ns).await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body: Namespace = k8s_openapi::serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces
            .create(&PostParams::default(), &body)
            .await
            .expect("namespace created");
        let pods = Api::namespaced(client.clone(), ns);
        Some(Cluster {
            client,
            ns: ns.to_owned(),
            pods,
        })
    }

    async fn pool(&self, port: u16) -> ConnectionPool {
        let mut options = K8sOptions::new(&self.ns);
        options.port = port;
        k8s_connection_pool(self.client.clone(), options)
            .await
            .expect("pool syncs")
    }

    async fn create(&self, name: &str, labels: Value) {
        let pod: Pod = k8s_openapi::serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "executor", "image": "jinaai/jina:3.1.0"}]}
        }))
        .unwrap();
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created");
    }

    /// Patches `status` through the /status subresource (a patch of the pod itself ignores it).
    async fn status(&self, name: &str, ip: &str, phase: &str, ready: bool) {
        let status = json!({"status": {
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "containerStatuses": [{
                "name": "executor", "ready": ready, "restartCount": 0, "image": "jinaai/jina:3.1.0", "imageID": "",
                "state": {"running": {}}
            }]
        }});
        self.pods
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("status patched");
    }

    async fn labels(&self, name: &str, labels: Value) {
        self.pods
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": labels}})),
            )
            .await
            .unwrap();
    }

    async fn delete(&self, name: &str) {
        self.pods
            .delete(name, &DeleteParams::default())
            .await
            .expect("pod deleted");
    }
}

fn worker(deployment: &str, shard: &str) -> Value {
    json!({"jina_deployment_name": deployment, "pod_type": "WORKER", "shard_id": shard})
}

/// (replica set, addresses) of `deployment`.
fn routes(pool: &ConnectionPool, deployment: &str) -> Vec<(ReplicaSet, Vec<String>)> {
    pool.routing_table()
        .unwrap()
        .into_iter()
        .filter(|r| r.deployment == deployment)
        .map(|r| {
            let mut a = r.addresses;
            a.sort();
            (r.replica_set, a)
        })
        .collect()
}

async fn eventually(pool: &ConnectionPool, deployment: &str, expected: Vec<(ReplicaSet, Vec<String>)>) -> Duration {
    let started = Instant::now();
    loop {
        let now = routes(pool, deployment);
        if now == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "routes of {deployment}: {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn addr(ip: &str, port: u16) -> String {
    format!("{ip}:{port}")
}

/// A free port that is free on the other loopback addresses used by a test as well.
async fn servers(names_ips: &[(&str, &str)]) -> (u16, Vec<TestServer>) {
    'retry: for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut out = Vec::new();
        for (name, ip) in names_ips {
            let sa: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            match TestServer::start_at(name, Role::Echo, sa).await {
                Ok(s) => out.push(s),
                Err(_) => continue 'retry,
            }
        }
        return (port, out);
    }
    panic!("no common free port");
}

async fn answered_by(pool: &ConnectionPool, deployment: &str) -> String {
    let t = pool
        .send_request(
            data("k8s"),
            deployment,
            To::AnyShard,
            &SendOptions {
                timeout: Some(Duration::from_secs(5)),
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    trailer(&t.result.expect("send to a discovered replica"), "replica").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_added_ready_become_ready_scale_and_delete() {
    let Some(c) = Cluster::new("jina-scale").await else {
        return;
    };
    let (port, _servers) = servers(&[("r1", "127.0.0.11"), ("r2", "127.0.0.12")]).await;
    // a pod that is ready before the pool starts: seen by the first list
    c.create("enc-0", worker("enc", "")).await;
    c.status("enc-0", "127.0.0.11", "Running", true).await;
    let pool = c.pool(port).await;
    assert_eq!(
        routes(&pool, "enc"),
        vec![(ReplicaSet::Shard(0), vec![addr("127.0.0.11", port)])]
    );
    assert_eq!(answered_by(&pool, "enc").await, "r1");

    // scale 1 -> 2: a new pod, pending, then ready (MODIFIED)
    c.create("enc-1", worker("enc", "")).await;
    c.status("enc-1", "127.0.0.12", "Pending", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(routes(&pool, "enc").len(), 1, "a pending pod is not routed");
    let patched = Instant::now();
    c.status("enc-1", "127.0.0.12", "Running", true).await;
    eventually(
        &pool,
        "enc",
        vec![(
            ReplicaSet::Shard(0),
            vec![addr("127.0.0.11", port), addr("127.0.0.12", port)],
        )],
    )
    .await;
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2 {
        seen.push(answered_by(&pool, "enc").await);
    }
    let usable = patched.elapsed();
    seen.sort();
    assert_eq!(seen, ["r1", "r2"]);
    println!(
        "k8s: status patch -> route usable (both replicas answered) in {} ms",
        usable.as_millis()
    );

    // becoming unready removes it
    c.status("enc-1", "127.0.0.12", "Running", false).await;
    eventually(
        &pool,
        "enc",
        vec![(ReplicaSet::Shard(0), vec![addr("127.0.0.11", port)])],
    )
    .await;
    c.status("enc-1", "127.0.0.12", "Running", true).await;
    eventually(
        &pool,
        "enc",
        vec![(
            ReplicaSet::Shard(0),
            vec![addr("127.0.0.11", port), addr("127.0.0.12", port)],
        )],
    )
    .await;

    // scale 2 -> 0: deletions (DELETED outright, no nodeName)
    c.delete("enc-0").await;
    eventually(
        &pool,
        "enc",
        vec![(ReplicaSet::Shard(0), vec![addr("127.0.0.12", port)])],
    )
    .await;
    assert_eq!(answered_by(&pool, "enc").await, "r2");
    c.delete("enc-1").await;
    eventually(&pool, "enc", vec![]).await;
    assert!(!pool.has_deployment("enc"));
    pool.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_shards_and_pods_that_do_not_count() {
    let Some(c) = Cluster::new("jina-shards").await else {
        return;
    };
    let (port, _servers) = servers(&[("head", "127.0.0.21"), ("s0", "127.0.0.22"), ("s1", "127.0.0.23")]).await;
    let pool = c.pool(port).await;
    c.create(
        "idx-head",
        json!({"jina_deployment_name": "idx", "pod_type": "HEAD", "shard_id": ""}),
    )
    .await;
    c.create("idx-0", worker("idx", "0")).await;
    c.create("idx-1", worker("idx", "1")).await;
    c.create("nginx", json!({"app": "nginx"})).await;
    c.create("half", json!({"jina_deployment_name": "idx", "pod_type": "WORKER"}))
        .await;
    c.create("idx-unready", worker("idx", "0")).await;
    c.status("idx-head", "127.0.0.21", "Running", true).await;
    c.status("idx-0", "127.0.0.22", "Running", true).await;
    c.status("idx-1", "127.0.0.23", "Running", true).await;
    c.status("nginx", "127.0.0.99", "Running", true).await;
    c.status("half", "127.0.0.98", "Running", true).await;
    c.status("idx-unready", "127.0.0.97", "Running", false).await;
    eventually(
        &pool,
        "idx",
        vec![
            (ReplicaSet::Head, vec![addr("127.0.0.21", port)]),
            (ReplicaSet::Shard(0), vec![addr("127.0.0.22", port)]),
            (ReplicaSet::Shard(1), vec![addr("127.0.0.23", port)]),
        ],
    )
    .await;
    assert_eq!(
        pool.routing_table().unwrap().len(),
        3,
        "non-jina, half-labelled and unready pods are ignored"
    );
    let all = pool
        .send_request(data("all"), "idx", To::AllShards, &SendOptions::default())
        .unwrap()
        .await;
    let names: Vec<String> = all
        .into_iter()
        .map(|t| trailer(&t.result.unwrap(), "replica").unwrap())
        .collect();
    assert_eq!(names, ["s0", "s1"]);
    let head = pool
        .send_request(data("h"), "idx", To::Head, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    assert_eq!(trailer(&head.result.unwrap(), "replica").as_deref(), Some("head"));

    // relabelling a pod out of the deployment removes it; an IP change moves it
    c.labels("idx-1", json!({"jina_deployment_name": "other"})).await;
    eventually(
        &pool,
        "idx",
        vec![
            (ReplicaSet::Head, vec![addr("127.0.0.21", port)]),
            (ReplicaSet::Shard(0), vec![addr("127.0.0.22", port)]),
        ],
    )
    .await;
    c.status("idx-0", "127.0.0.23", "Running", true).await;
    eventually(
        &pool,
        "idx",
        vec![
            (ReplicaSet::Head, vec![addr("127.0.0.21", port)]),
            (ReplicaSet::Shard(0), vec![addr("127.0.0.23", port)]),
        ],
    )
    .await;
    assert_eq!(
        answered_by(&pool, "idx").await,
        "s1",
        "the new IP is used, the old one is gone"
    );
    pool.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_resyncs_without_stale_routes() {
    let Some(c) = Cluster::new("jina-restart").await else {
        return;
    };
    let run_dir = std::env::var("JINA_NET_K8S_RUN_DIR").expect("run.sh sets JINA_NET_K8S_RUN_DIR");
    let (port, _servers) = servers(&[("a", "127.0.0.31"), ("b", "127.0.0.32")]).await;
    c.create("w-a", worker("rst", "")).await;
    c.status("w-a", "127.0.0.31", "Running", true).await;
    let pool = c.pool(port).await;
    assert_eq!(
        routes(&pool, "rst"),
        vec![(ReplicaSet::Shard(0), vec![addr("127.0.0.31", port)])]
    );

    // stop the API server, start it again, then change the pods at once
    let pid = std::fs::read_to_string(format!("{run_dir}/apiserver.pid")).unwrap();
    let status = std::process::Command::new("kill").arg(pid.trim()).status().unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        routes(&pool, "rst").len(),
        1,
        "routes stay while the API server is away"
    );
    assert_eq!(
        answered_by(&pool, "rst").await,
        "a",
        "sends go on while the API server is away"
    );
    let up = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/k8s/k8s-up.sh"))
        .env("APISERVER_ONLY", "1")
        .env("RUN_DIR", &run_dir)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let restarted = Instant::now();
    c.delete("w-a").await;
    c.create("w-b", worker("rst", "")).await;
    c.status("w-b", "127.0.0.32", "Running", true).await;
    let took = eventually(
        &pool,
        "rst",
        vec![(ReplicaSet::Shard(0), vec![addr("127.0.0.32", port)])],
    )
    .await;
    println!(
        "k8s: after an API server restart the table was resynced {} ms after the pods changed ({} ms after restart)",
        took.as_millis(),
        restarted.elapsed().as_millis()
    );
    assert_eq!(answered_by(&pool, "rst").await, "b");
    pool.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_configuration_is_a_clear_error() {
    let Some(path) = kubeconfig() else { return };
    let dir = std::env::temp_dir().join(format!("jina-net-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("kubeconfig");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("test-admin-token", "wrong-token");
    std::fs::write(&bad, text).unwrap();
    let client = client_from_kubeconfig(&bad).await.unwrap();
    let e = k8s_connection_pool(client, K8sOptions::new("default"))
        .await
        .unwrap_err();
    assert!(matches!(e, jina_net::Error::Kubernetes(_)), "{e}");
    assert!(e.to_string().contains("\"default\""), "{e}");
    let Err(e) = client_from_kubeconfig(&dir.join("missing")).await else {
        panic!("a missing file must fail")
    };
    assert!(e.to_string().contains("missing"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_abi_constructor_and_routing_table() {
    use jina_net::ffi::pool::{jina_net_pool, jina_net_pool_free, jina_net_pool_new_k8s};
    use jina_net::ffi::result::jina_net_result;
    use jina_net::ffi::routes::jina_net_pool_routes;
    use jina_net::ffi::string::jina_net_string_free;
    use std::ffi::{CStr, CString};
    let Some(c) = Cluster::new("jina-ffi").await else {
        return;
    };
    let (port, _servers) = servers(&[("ffi", "127.0.0.41")]).await;
    c.create(
        "ffi-head",
        json!({"jina_deployment_name": "ffi", "pod_type": "head", "shard_id": ""}),
    )
    .await;
    c.status("ffi-head", "127.0.0.41", "Running", true).await;
    let path = CString::new(kubeconfig().unwrap().to_str().unwrap()).unwrap();
    let ns = CString::new("jina-ffi").unwrap();
    // the constructor blocks (it waits for the first list): call it off the async threads
    let table = tokio::task::spawn_blocking(move || unsafe {
        let mut pool: *mut jina_net_pool = std::ptr::null_mut();
        let r = jina_net_pool_new_k8s(ns.as_ptr(), path.as_ptr(), port, std::ptr::null(), &mut pool);
        assert_eq!(r, jina_result_ok());
        let mut text = std::ptr::null_mut();
        assert_eq!(jina_net_pool_routes(pool, &mut text), jina_result_ok());
        let table = CStr::from_ptr(text).to_str().unwrap().to_owned();
        jina_net_string_free(text);
        jina_net_pool_free(pool);
        // a kubeconfig that does not exist is a clear error, and the out-parameter is untouched
        let mut other: *mut jina_net_pool = std::ptr::null_mut();
        let missing = CString::new("/nonexistent/kubeconfig").unwrap();
        let r = jina_net_pool_new_k8s(std::ptr::null(), missing.as_ptr(), 0, std::ptr::null(), &mut other);
        assert_eq!(r, jina_net_result::JINA_NET_KUBERNETES_ERROR);
        assert!(other.is_null());
        table
    })
    .await
    .unwrap();
    // a new pool has not connected yet: the replica is idle
    assert_eq!(table, format!("ffi\thead\t127.0.0.41:{port}\tidle\n"));

    fn jina_result_ok() -> jina_net_result {
        jina_net_result::JINA_NET_OK
    }
}
