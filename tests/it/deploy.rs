//! deploy/: the systemd units pass `systemd-analyze verify` without a warning, the Kubernetes
//! manifests parse as YAML with the settings the deployment relies on, the example settings
//! load, and the crontab's schedule is valid. `TAGWALL_TEST_SYSTEMD=1` (set by `.ci/run`) makes a
//! missing `systemd-analyze` a failure.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

#[test]
fn systemd_units_verify_cleanly() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(analyze) = analyze else {
        common::skip::skip(common::skip::Needs {
            what: "systemd-analyze is not installed",
            required_by: "TAGWALL_TEST_SYSTEMD",
            how: "apt-get install systemd",
        });
        return;
    };
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tagwall");
    let units = ["tagwall.service", "tagwall.timer", "tagwall-serve.service"];
    for unit in units {
        let text = std::fs::read_to_string(deploy().join("systemd").join(unit)).unwrap();
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/tagwall", &bin.display().to_string()),
        )
        .unwrap();
    }
    let out = Command::new(analyze)
        .arg("verify")
        .args(units.map(|u| dir.path().join(u)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
    let service = std::fs::read_to_string(deploy().join("systemd/tagwall.service")).unwrap();
    let serve = std::fs::read_to_string(deploy().join("systemd/tagwall-serve.service")).unwrap();
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "User=tagwall\n",
        "StateDirectory=tagwall\n",
    ] {
        assert!(service.contains(hardening), "{hardening}");
        assert!(serve.contains(hardening), "serve: {hardening}");
    }
    assert!(service.contains("CapabilityBoundingSet=\n"));
    assert!(serve.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
    assert!(serve.contains("tagwall.toml serve\n") && serve.contains("Restart=on-failure"));
}

fn docs(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy().join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn kubernetes_manifests_parse_and_forbid_concurrent_runs() {
    let docs = docs("kubernetes/tagwall.yaml");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "PersistentVolumeClaim",
            "CronJob",
            "Deployment",
            "Service",
            "PodDisruptionBudget"
        ]
    );
    let cron = &docs[2]["spec"];
    assert_eq!(cron["concurrencyPolicy"].as_str(), Some("Forbid"));
    tagwall::job::schedule::CronSchedule::parse(cron["schedule"].as_str().unwrap()).unwrap();
    let pod = &cron["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    let db = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("TAGWALL_DB"))
        .unwrap();
    assert_eq!(
        db["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("tagwall-db")
    );
    assert!(
        db["value"].is_badvalue(),
        "the URL comes from the Secret, never inline"
    );
    // The ConfigMap's settings load.
    let toml = docs[0]["data"]["tagwall.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tagwall.toml");
    std::fs::write(&path, toml).unwrap();
    let config =
        tagwall::app::config::Config::load(Some(&path), Some("postgres://u@db/tagwall")).unwrap();
    assert_eq!(config.rulesets[0].name, "entra-connector");
    serve_replicas_match_the_settings(&docs, &config);
}

/// Two `serve` replicas reading the store, ready on /healthz, behind a Service that selects
/// them, on the port the settings listen on, tokens from a Secret.
fn serve_replicas_match_the_settings(docs: &[Yaml], config: &tagwall::app::config::Config) {
    use tagwall::serve::settings::ServeFrom;
    assert_eq!(config.serve.source, ServeFrom::Store);
    let deployment = &docs[3]["spec"];
    assert_eq!(deployment["replicas"].as_i64(), Some(2));
    let labels = &deployment["template"]["metadata"]["labels"];
    assert_eq!(&deployment["selector"]["matchLabels"], labels);
    assert_eq!(
        &docs[4]["spec"]["selector"], labels,
        "the Service selects the replicas"
    );
    assert_eq!(&docs[5]["spec"]["selector"]["matchLabels"], labels);
    let pod = &deployment["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let c = &pod["containers"][0];
    assert_eq!(c["args"][0].as_str(), Some("serve"));
    assert_eq!(
        c["ports"][0]["containerPort"].as_i64(),
        Some(i64::from(config.serve.listen.port()))
    );
    assert!(
        config.serve.listen.ip().is_unspecified(),
        "reachable from the Service"
    );
    let probe = &c["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"].as_str(), Some("/healthz"));
    assert_eq!(probe["port"], c["ports"][0]["name"]);
    assert_eq!(
        docs[4]["spec"]["ports"][0]["targetPort"],
        c["ports"][0]["name"]
    );
    let env = c["env"].as_vec().unwrap();
    let from_secret = |name: &str| {
        let e = env
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap();
        assert!(e["value"].is_badvalue(), "{name} never inline");
        e["valueFrom"]["secretKeyRef"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(from_secret("TAGWALL_DB"), "tagwall-db");
    assert_eq!(from_secret("TAGWALL_SERVE_TOKENS"), "tagwall-serve");
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_example_settings_and_the_crontab_are_valid() {
    let config =
        tagwall::app::config::Config::load(Some(&deploy().join("tagwall.example.toml")), None)
            .unwrap();
    assert_eq!(config.rulesets[0].name, "entra-connector");
    assert_eq!(config.schedule.cron.text(), "0 7 * * *");
    let crontab = std::fs::read_to_string(deploy().join("cron/tagwall.crontab")).unwrap();
    let job = crontab
        .lines()
        .find(|l| l.contains("tagwall") && !l.starts_with('#') && !l.contains('='))
        .unwrap();
    let fields: Vec<&str> = job.split_whitespace().collect();
    tagwall::job::schedule::CronSchedule::parse(&fields[..5].join(" ")).unwrap();
    assert!(job.contains(" sync"), "{job}");
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert_eq!(
        dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .count(),
        2,
        "multi-stage"
    );
    assert!(dockerfile.contains("USER 10001"), "non-root");
    assert!(dockerfile.contains("VOLUME [\"/var/lib/tagwall\"]"));
    assert!(dockerfile.contains("EXPOSE 8080"));
    assert!(dockerfile.contains("CMD [\"daemon\", \"--run-now\"]"));
    assert!(
        dockerfile.contains("daemon --run-now --serve 0.0.0.0:8080"),
        "documented"
    );
}
