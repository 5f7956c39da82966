
# The journal: PostgreSQL on Cloud SQL ({{instance}}), shared by every instance of the service.
# Its URL, password included, is the secret {{STATE_SECRET}}: {{url}}
resource "google_project_iam_member" "antibody_cloudsql_client" {
  project = "{{project}}"
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.antibody.email}"
}

resource "google_secret_manager_secret_iam_member" "antibody_state" {
  project   = "{{project}}"
  secret_id = "{{STATE_SECRET}}"
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.antibody.email}"
}
