//! gcloud, unchanged, over who may act: service accounts and their keys, VMs and the accounts they run as, and the
//! organization, folders and projects grants are made on — each everyday command works against the sandbox, and what
//! a user opens with it antibody closes.

use serde_json::Value;

use crate::gcloud::{gcloud, gcloud_ok};
use crate::harness::Harness;

// Issue 33: `gcloud iam service-accounts disable|enable|delete|get-iam-policy` were 404/405 and `gcloud compute
// instances add-tags|add-labels` 404. A key downloaded with gcloud is disabled by antibody, and a VM created with its
// serial port open is closed, while the account's and the VM's everyday commands work; the journeys run side by side.
#[tokio::test]
async fn service_accounts_and_vms_managed_with_gcloud_are_healed() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let config = config.path();
    let account = "builder@test-project.iam.gserviceaccount.com";
    let key_file = config.join("key.json");
    let key_file = key_file.to_str().expect("a UTF-8 path");
    let accounts = async {
        gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "create", "builder"],
        )
        .await;
        gcloud_ok(
            &harness,
            config,
            &[
                "iam",
                "service-accounts",
                "keys",
                "create",
                key_file,
                "--iam-account",
                account,
            ],
        )
        .await;
        harness.sandbox.settled().await;
        let keys = gcloud_ok(
            &harness,
            config,
            &[
                "iam",
                "service-accounts",
                "keys",
                "list",
                "--iam-account",
                account,
                "--managed-by=user",
            ],
        )
        .await;
        assert_eq!(
            keys[0]["disabled"], true,
            "antibody disabled the downloaded key: {keys}"
        );
        gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "disable", account],
        )
        .await;
        let described = gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "describe", account],
        )
        .await;
        assert_eq!(described["disabled"], true, "{described}");
        gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "enable", account],
        )
        .await;
        let policy = gcloud_ok(
            &harness,
            config,
            &[
                "iam",
                "service-accounts",
                "add-iam-policy-binding",
                account,
                "--member=user:bob@example.com",
                "--role=roles/iam.serviceAccountUser",
            ],
        )
        .await;
        assert_eq!(
            policy["bindings"][0]["members"][0], "user:bob@example.com",
            "{policy}"
        );
        let policy = gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "get-iam-policy", account],
        )
        .await;
        assert_eq!(
            policy["bindings"][0]["role"], "roles/iam.serviceAccountUser",
            "{policy}"
        );
        gcloud_ok(
            &harness,
            config,
            &["iam", "service-accounts", "delete", account],
        )
        .await;
        let (ok, _, _) = gcloud(
            &harness,
            config,
            &["iam", "service-accounts", "describe", account],
        )
        .await;
        assert!(!ok, "deleted");
    };
    let vms = async {
        let zone = "--zone=us-central1-a";
        gcloud_ok(
            &harness,
            config,
            &[
                "compute",
                "instances",
                "create",
                "debug-vm",
                zone,
                "--metadata=serial-port-enable=true",
            ],
        )
        .await;
        gcloud_ok(
            &harness,
            config,
            &[
                "compute",
                "instances",
                "add-tags",
                "debug-vm",
                zone,
                "--tags=web,ssh",
            ],
        )
        .await;
        gcloud_ok(
            &harness,
            config,
            &[
                "compute",
                "instances",
                "add-labels",
                "debug-vm",
                zone,
                "--labels=env=dev",
            ],
        )
        .await;
        gcloud_ok(
            &harness,
            config,
            &[
                "compute",
                "instances",
                "remove-tags",
                "debug-vm",
                zone,
                "--tags=ssh",
            ],
        )
        .await;
        harness.sandbox.settled().await;
        let described = gcloud_ok(
            &harness,
            config,
            &["compute", "instances", "describe", "debug-vm", zone],
        )
        .await;
        assert_eq!(
            described["tags"]["items"],
            serde_json::json!(["web"]),
            "{described}"
        );
        assert_eq!(
            described["labels"],
            serde_json::json!({"env": "dev"}),
            "{described}"
        );
        let serial = described["metadata"]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["key"] == "serial-port-enable")
            .map(|item| item["value"].clone());
        assert!(
            matches!(
                serial.as_ref().and_then(Value::as_str),
                None | Some("false" | "FALSE")
            ),
            "antibody closed the serial port: {described}"
        );
    };
    tokio::join!(accounts, vms);
}

// Issue 33: `gcloud organizations list|describe` (v1), `resource-manager folders create|list|describe` (v2) and
// `projects create` (v1, then Service Usage) were 404/405. The hierarchy is built with gcloud, and an outsider granted
// on the organization, on the new folder and in the new project is removed each time.
#[tokio::test]
async fn a_hierarchy_built_with_gcloud_is_guarded_at_every_level() {
    let harness = Harness::with(crate::harness::Options {
        tweak: Box::new(|config| {
            config.scope.organization = Some("organizations/123456789012".into());
        }),
        ..crate::harness::Options::default()
    })
    .await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let config = config.path();
    let organizations = gcloud_ok(&harness, config, &["organizations", "list"]).await;
    assert_eq!(
        organizations[0]["name"], "organizations/123456789012",
        "{organizations}"
    );
    assert_eq!(organizations[0]["lifecycleState"], "ACTIVE");
    let described = gcloud_ok(
        &harness,
        config,
        &["organizations", "describe", "123456789012"],
    )
    .await;
    assert_eq!(described["displayName"], "example.com", "{described}");
    let folder = gcloud_ok(
        &harness,
        config,
        &[
            "resource-manager",
            "folders",
            "create",
            "--display-name=Engineering",
            "--organization=123456789012",
        ],
    )
    .await;
    let folder_id = folder["name"]
        .as_str()
        .and_then(|name| name.strip_prefix("folders/"))
        .unwrap_or_else(|| panic!("a folder: {folder}"))
        .to_string();
    let listed = gcloud_ok(
        &harness,
        config,
        &[
            "resource-manager",
            "folders",
            "list",
            "--organization=123456789012",
        ],
    )
    .await;
    assert_eq!(listed[0]["displayName"], "Engineering", "{listed}");
    let described = gcloud_ok(
        &harness,
        config,
        &["resource-manager", "folders", "describe", &folder_id],
    )
    .await;
    assert_eq!(
        described["parent"], "organizations/123456789012",
        "{described}"
    );
    gcloud_ok(
        &harness,
        config,
        &[
            "projects",
            "create",
            "team-app-1",
            &format!("--folder={folder_id}"),
        ],
    )
    .await;
    let project = gcloud_ok(&harness, config, &["projects", "describe", "team-app-1"]).await;
    assert_eq!(
        project["parent"],
        serde_json::json!({"type": "folder", "id": folder_id}),
        "{project}"
    );
    let outsider = "--member=user:stranger@gmail.com";
    let on_organization = [
        "organizations",
        "add-iam-policy-binding",
        "123456789012",
        outsider,
        "--role=roles/viewer",
    ];
    let on_folder = [
        "resource-manager",
        "folders",
        "add-iam-policy-binding",
        &folder_id,
        outsider,
        "--role=roles/viewer",
    ];
    let on_project = [
        "projects",
        "add-iam-policy-binding",
        "team-app-1",
        outsider,
        "--role=roles/editor",
    ];
    tokio::join!(
        gcloud_ok(&harness, config, &on_organization),
        gcloud_ok(&harness, config, &on_folder),
        gcloud_ok(&harness, config, &on_project),
    );
    harness.sandbox.settled().await;
    let of_organization = ["organizations", "get-iam-policy", "123456789012"];
    let of_folder = ["resource-manager", "folders", "get-iam-policy", &folder_id];
    let of_project = ["projects", "get-iam-policy", "team-app-1"];
    let (organization, folder_policy, project_policy) = tokio::join!(
        gcloud_ok(&harness, config, &of_organization),
        gcloud_ok(&harness, config, &of_folder),
        gcloud_ok(&harness, config, &of_project),
    );
    for policy in [organization, folder_policy, project_policy] {
        assert!(
            !policy.to_string().contains("stranger@gmail.com"),
            "antibody removed the outsider: {policy}"
        );
    }
    assert_eq!(harness.count("remediated").await, 3);
}
