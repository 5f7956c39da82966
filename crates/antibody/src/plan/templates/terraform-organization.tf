resource "google_organization_iam_custom_role" "antibody" {
  org_id  = "{{organization}}"
  role_id = "{{ROLE}}"
  title   = "antibody remediator"
  permissions = [
{{permissions}}  ]
  depends_on = [google_project_service.antibody]
}

# Exactly the permissions the enabled fixes need, granted at the organization: every project under it.
resource "google_organization_iam_member" "antibody_role" {
  org_id = "{{organization}}"
  role   = google_organization_iam_custom_role.antibody.name
  member = "serviceAccount:${google_service_account.antibody.email}"
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.antibody.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# The organization's audit entries: an aggregated sink (every folder and project under the organization, none
# intercepted) into a Pub/Sub topic, pushed to the service with OIDC tokens; after {{attempts}} failed deliveries a
# message goes to the dead-letter topic instead of being lost. No Eventarc trigger: the sink already carries this
# project's entries, so each change arrives once.
resource "google_pubsub_topic" "audit" {
  project    = "{{project}}"
  name       = "{{TOPIC}}"
  depends_on = [google_project_service.antibody]
}

resource "google_pubsub_topic" "dead_letter" {
  project    = "{{project}}"
  name       = "{{TOPIC}}-dead-letter"
  depends_on = [google_project_service.antibody]
}

resource "google_logging_organization_sink" "antibody" {
  org_id           = "{{organization}}"
  name             = "{{TOPIC}}"
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.audit.id}"
  include_children = true
  filter           = <<-FILTER_END
{{filter}}
  FILTER_END
}

resource "google_pubsub_topic_iam_member" "sink_writer" {
  project = "{{project}}"
  topic   = google_pubsub_topic.audit.name
  role    = "roles/pubsub.publisher"
  member  = google_logging_organization_sink.antibody.writer_identity
}

# Pub/Sub signs the pushes as the service account, forwards undeliverable messages and acknowledges them at the
# source.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.antibody.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = "{{project}}"
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription" "push" {
  project              = "{{project}}"
  name                 = "{{TOPIC}}-push"
  topic                = google_pubsub_topic.audit.id
  ack_deadline_seconds = 60

  push_config {
    push_endpoint = google_cloud_run_v2_service.antibody.uri
    oidc_token {
      service_account_email = google_service_account.antibody.email
      audience              = local.url
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = {{attempts}}
  }
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  project      = "{{project}}"
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
