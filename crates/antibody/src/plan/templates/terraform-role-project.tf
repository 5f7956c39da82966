resource "google_project_iam_custom_role" "antibody" {
  project = "{{project}}"
  role_id = "{{ROLE}}"
  title   = "antibody remediator"
  permissions = [
{{permissions}}  ]
  depends_on = [google_project_service.antibody]
}

resource "google_project_iam_member" "antibody_role" {
  project = "{{project}}"
  role    = google_project_iam_custom_role.antibody.name
  member  = "serviceAccount:${google_service_account.antibody.email}"
}

resource "google_project_iam_member" "antibody_event_receiver" {
  project = "{{project}}"
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.antibody.email}"
}
