
# The configuration this deployment was planned from, where the service reads it: the secret {{CONFIG_SECRET}},
# mounted as {{CONFIG_PATH}} (ANTIBODY_CONFIG); a changed file is a new version and a new revision.
resource "google_secret_manager_secret" "antibody_config" {
  project   = "{{project}}"
  secret_id = "{{CONFIG_SECRET}}"
  replication {
    auto {}
  }
  depends_on = [google_project_service.antibody]
}

resource "google_secret_manager_secret_version" "antibody_config" {
  secret      = google_secret_manager_secret.antibody_config.id
  secret_data = file("{{file}}")
}

resource "google_secret_manager_secret_iam_member" "antibody_config" {
  project   = "{{project}}"
  secret_id = google_secret_manager_secret.antibody_config.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.antibody.email}"
}
