
# The journal: Firestore (database {{database}}, Native mode), shared by every instance, so the service scales to zero
# and a replaced instance loses nothing. A project whose {{database}} database exists already imports it:
#   terraform import google_firestore_database.antibody "projects/{{project}}/databases/{{database}}"
resource "google_firestore_database" "antibody" {
  project         = "{{project}}"
  name            = "{{database}}"
  location_id     = "{{region}}"
  type            = "FIRESTORE_NATIVE"
  deletion_policy = "ABANDON"
  depends_on      = [google_project_service.antibody]
}

resource "google_project_iam_member" "antibody_datastore_user" {
  project = "{{project}}"
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.antibody.email}"
}
