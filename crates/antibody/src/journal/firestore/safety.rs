//! The state the safety controls share across replicas, on Firestore: a resource's recent fixes and release, a
//! project's fix slots, leases timed by Firestore's clock, quarantine, deferred decisions taken once, the kill
//! switch and the exemption registry.

use serde_json::{Map, Value, json};

use super::wire::{self, Doc, Fault, Write};
use super::{Firestore, collection, hashed};
use crate::journal::{Error, Exemption, Quarantine, Safety};

fn exemption(doc: &Doc) -> Exemption {
    Exemption {
        id: doc.int("id").unwrap_or_default(),
        resource: doc.string("resource"),
        owner: doc.string("owner"),
        reason: doc.string("reason"),
        expires_epoch: doc.int("expiresEpoch"),
        created_at: doc.string("createdAt"),
    }
}

fn quarantine(doc: &Doc) -> Quarantine {
    Quarantine {
        resource_key: doc.string("resourceKey"),
        since: doc.string("since"),
        principals: doc.string("principals"),
        reason: doc.string("reason"),
    }
}

impl Firestore {
    fn control(&self) -> String {
        self.name(collection::SETTINGS, "control")
    }

    fn resource_doc(&self, resource_key: &str) -> String {
        self.name(collection::RESOURCES, &hashed(resource_key))
    }

    fn project_doc(&self, project: &str) -> String {
        self.name(collection::PROJECTS, &hashed(project))
    }

    fn quarantine_doc(&self, resource_key: &str) -> String {
        self.name(collection::QUARANTINE, &hashed(resource_key))
    }

    /// A project's fix slots still within the hour.
    fn live_slots(&self, project: Option<&Doc>) -> Vec<i64> {
        let since = self.clock().now_secs() - 3600;
        project
            .map(|doc| doc.array("slots"))
            .unwrap_or_default()
            .iter()
            .filter_map(wire::integer_of)
            .filter(|epoch| *epoch > since)
            .collect()
    }

    pub async fn safety(
        &self,
        resource_key: &str,
        project: &str,
        flap_window_secs: i64,
    ) -> Result<Safety, Error> {
        let names = &[
            self.control(),
            self.quarantine_doc(resource_key),
            self.resource_doc(resource_key),
            self.project_doc(project),
        ];
        self.retrying("reading the safety state", || async {
            let (reads, exemptions) = tokio::join!(
                self.get_all(names, None),
                self.query(collection::EXEMPTIONS, Map::new(), None)
            );
            let (found, _) = reads?;
            let now = self.clock().now_secs();
            let mut exemptions: Vec<Exemption> = exemptions?.iter().map(exemption).collect();
            exemptions.sort_by_key(|exemption| exemption.id);
            let resource = found[2].as_ref();
            let released = resource
                .and_then(|doc| doc.int("releasedEpoch"))
                .unwrap_or(0);
            let flap_since = (now - flap_window_secs).max(released);
            let recent_breakers: Vec<String> = resource
                .map(|doc| doc.array("fixes"))
                .unwrap_or_default()
                .iter()
                .rev()
                .filter(|fix| wire::field_int(fix, "epoch").is_some_and(|epoch| epoch > flap_since))
                .map(|fix| {
                    wire::field_str(fix, "principal")
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            Ok(Safety {
                paused: found[0].as_ref().is_some_and(|doc| doc.bool("paused")),
                exemption: exemptions
                    .into_iter()
                    .find(|exemption| exemption.covers(resource_key, now)),
                quarantined: found[1].as_ref().map(quarantine),
                recent_fixes_of_resource: u32::try_from(recent_breakers.len()).unwrap_or(u32::MAX),
                recent_breakers,
                recent_fixes_in_project: u32::try_from(self.live_slots(found[3].as_ref()).len())
                    .unwrap_or(u32::MAX),
            })
        })
        .await
    }

    /// Takes a fix slot inside the caller's transaction: the write that takes it, or `None` when the cap leaves none.
    pub(super) async fn take_slot(
        &self,
        project: &str,
        cap: u32,
        transaction: &super::Tx,
    ) -> Result<Option<Write>, Fault> {
        let name = self.project_doc(project);
        let doc = self.get(name.clone(), Some(transaction)).await?;
        let mut slots = self.live_slots(doc.as_ref());
        if slots.len() >= cap as usize {
            return Ok(None);
        }
        slots.push(self.clock().now_secs());
        let mut fields = Map::new();
        fields.insert(
            "slots".into(),
            wire::array(slots.into_iter().map(wire::integer).collect()),
        );
        fields.insert("project".into(), wire::string(project));
        Ok(Some(Write::update(&name, fields)))
    }

    pub async fn reserve_fix(&self, project: &str, cap: u32) -> Result<bool, Error> {
        if cap == 0 {
            return Ok(true);
        }
        self.transaction("taking a fix slot", move |transaction| async move {
            Ok(match self.take_slot(project, cap, &transaction).await? {
                Some(write) => (vec![write], true),
                None => (Vec::new(), false),
            })
        })
        .await
    }

    /// Takes the lease on a resource for `seconds` (by Firestore's clock) unless another holder's lease is live.
    pub async fn try_lease(&self, key: &str, holder: &str, seconds: f64) -> Result<bool, Error> {
        let name = &self.name(collection::LEASES, &hashed(key));
        self.retrying("taking a lease", || async move {
            let (mut found, read_time) = self.get_all(std::slice::from_ref(name), None).await?;
            let current = found.pop().flatten();
            let live = current.as_ref().is_some_and(|lease| {
                let taken = lease.updated_micros().unwrap_or(0);
                let seconds = lease.int("micros").unwrap_or(0);
                taken + seconds > read_time
            });
            if live {
                return Ok(false);
            }
            let mut fields = Map::new();
            fields.insert("holder".into(), wire::string(holder));
            fields.insert("micros".into(), wire::integer((seconds * 1e6) as i64));
            let write = Write::update(name, fields);
            let write = match &current {
                Some(lease) => write.unchanged_since(&lease.update_time),
                None => write.create(),
            };
            match self.commit(vec![write], None).await {
                Ok(_) => Ok(true),
                Err(Fault::AlreadyExists(_) | Fault::Precondition(_)) => Ok(false),
                Err(other) => Err(other),
            }
        })
        .await
    }

    pub async fn end_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        let name = &self.name(collection::LEASES, &hashed(key));
        self.retrying("ending a lease", || async move {
            let Some(lease) = self.get(name.clone(), None).await? else {
                return Ok(());
            };
            if lease.str("holder") != Some(holder) {
                return Ok(());
            }
            match self
                .commit(
                    vec![Write::delete(name).unchanged_since(&lease.update_time)],
                    None,
                )
                .await
            {
                Ok(_) | Err(Fault::Precondition(_) | Fault::NotFound(_)) => Ok(()),
                Err(other) => Err(other),
            }
        })
        .await
    }

    pub async fn quarantine(
        &self,
        resource_key: &str,
        principals: &str,
        reason: &str,
    ) -> Result<bool, Error> {
        let name = &self.quarantine_doc(resource_key);
        self.retrying("quarantining a resource", || async move {
            let mut fields = Map::new();
            fields.insert("resourceKey".into(), wire::string(resource_key));
            fields.insert("since".into(), wire::string(&self.now_text()));
            fields.insert("principals".into(), wire::string(principals));
            fields.insert("reason".into(), wire::string(reason));
            match self
                .commit(vec![Write::update(name, fields).create()], None)
                .await
            {
                Ok(_) => Ok(true),
                Err(Fault::AlreadyExists(_)) => Ok(false),
                Err(other) => Err(other),
            }
        })
        .await
    }

    pub async fn quarantined(&self) -> Result<Vec<Quarantine>, Error> {
        self.retrying("listing quarantined resources", || async {
            let mut found: Vec<Quarantine> = self
                .query(collection::QUARANTINE, Map::new(), None)
                .await?
                .iter()
                .map(quarantine)
                .collect();
            found.sort_by(|a, b| a.since.cmp(&b.since));
            Ok(found)
        })
        .await
    }

    pub async fn release(&self, resource_key: &str) -> Result<bool, Error> {
        let quarantined = &self.quarantine_doc(resource_key);
        let resource = &self.resource_doc(resource_key);
        self.transaction("releasing a resource", move |transaction| async move {
            let held = self
                .get(quarantined.clone(), Some(&*transaction))
                .await?
                .is_some();
            let mut fields = Map::new();
            fields.insert(
                "releasedEpoch".into(),
                wire::integer(self.clock().now_secs()),
            );
            let mut writes = vec![Write::update(resource, fields).mask(&["releasedEpoch"])];
            if held {
                writes.push(Write::delete(quarantined));
            }
            Ok((writes, held))
        })
        .await
    }

    pub async fn defer(
        &self,
        resource_key: &str,
        project: &str,
        due_epoch: i64,
        hint: Option<&str>,
    ) -> Result<(), Error> {
        let name = &self.name(collection::DEFERRED, &hashed(resource_key));
        self.transaction("deferring a decision", move |transaction| async move {
            let earlier = self.get(name.clone(), Some(&*transaction)).await?;
            let earlier_due = earlier.as_ref().and_then(|doc| doc.int("dueEpoch"));
            let earlier_hint = earlier
                .as_ref()
                .map(|doc| doc.string("hint"))
                .filter(|hint| !hint.is_empty());
            let mut fields = Map::new();
            fields.insert("resourceKey".into(), wire::string(resource_key));
            fields.insert("project".into(), wire::string(project));
            fields.insert(
                "dueEpoch".into(),
                wire::integer(earlier_due.map_or(due_epoch, |earlier| earlier.min(due_epoch))),
            );
            if let Some(hint) = crate::journal::merge_hints(earlier_hint.as_deref(), hint) {
                fields.insert("hint".into(), wire::string(&hint));
            }
            Ok((vec![Write::update(name, fields)], ()))
        })
        .await
    }

    /// Takes the due decisions: each is deleted with an update-time precondition, so exactly one replica takes it.
    /// A failure part-way returns what was taken; the rest stay for the next round.
    pub async fn take_due_rechecks(&self, now: i64) -> Result<Vec<crate::journal::Due>, Error> {
        let due = self
            .retrying("listing due decisions", || async {
                let mut query = Map::new();
                query.insert(
                    "where".into(),
                    json!({"fieldFilter": {"field": {"fieldPath": "dueEpoch"},
                        "op": "LESS_THAN_OR_EQUAL", "value": wire::integer(now)}}),
                );
                self.query(collection::DEFERRED, query, None).await
            })
            .await?;
        let taken = self
            .take_each(due, "taking a decision", |doc| {
                Write::delete(&doc.name).unchanged_since(&doc.update_time)
            })
            .await?;
        Ok(taken
            .iter()
            .map(|doc| crate::journal::Due {
                resource: doc.string("resourceKey"),
                project: doc.string("project"),
                hint: Some(doc.string("hint")).filter(|hint| !hint.is_empty()),
            })
            .collect())
    }

    /// A durable write that changes nothing that matters: this replica's heartbeat.
    pub async fn writable(&self) -> Result<(), Error> {
        self.heartbeat().await
    }

    pub async fn set_paused(&self, paused: bool) -> Result<(), Error> {
        let name = &self.control();
        self.retrying("setting the kill switch", || async move {
            let mut fields = Map::new();
            fields.insert("paused".into(), json!({"booleanValue": paused}));
            self.commit(vec![Write::update(name, fields).mask(&["paused"])], None)
                .await
                .map(drop)
        })
        .await
    }

    pub async fn add_exemption(
        &self,
        resource: &str,
        owner: &str,
        reason: &str,
        expires_epoch: Option<i64>,
    ) -> Result<i64, Error> {
        self.retrying("registering an exemption", || async {
            let id = self.next_id();
            let mut fields = Map::new();
            let mut put = |name: &str, value: Value| {
                fields.insert(name.into(), value);
            };
            put("id", wire::integer(id));
            put("resource", wire::string(resource));
            put("owner", wire::string(owner));
            put("reason", wire::string(reason));
            put("expiresEpoch", wire::optional_integer(expires_epoch));
            put("createdAt", wire::string(&self.now_text()));
            let name = self.name(collection::EXEMPTIONS, &id.to_string());
            self.commit(vec![Write::update(&name, fields).create()], None)
                .await
                .map_err(Fault::raced)?;
            Ok(id)
        })
        .await
    }

    pub async fn exemptions(&self) -> Result<Vec<Exemption>, Error> {
        self.retrying("listing exemptions", || async {
            let mut found: Vec<Exemption> = self
                .query(collection::EXEMPTIONS, Map::new(), None)
                .await?
                .iter()
                .map(exemption)
                .collect();
            found.sort_by_key(|exemption| exemption.id);
            Ok(found)
        })
        .await
    }

    pub async fn remove_exemption(&self, id: i64) -> Result<bool, Error> {
        let name = &self.name(collection::EXEMPTIONS, &id.to_string());
        self.retrying("removing an exemption", || async move {
            match self
                .commit(vec![Write::delete(name).existing()], None)
                .await
            {
                Ok(_) => Ok(true),
                Err(Fault::NotFound(_)) => Ok(false),
                Err(other) => Err(other),
            }
        })
        .await
    }
}
