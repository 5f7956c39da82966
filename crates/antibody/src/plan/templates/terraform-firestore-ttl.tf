
# Rows of {{collection}} expire {{days}} days after they are written.
resource "google_firestore_field" "antibody_ttl_{{collection}}" {
  project    = "{{project}}"
  database   = google_firestore_database.antibody.name
  collection = "{{collection}}"
  field      = "expireAt"
  ttl_config {}
}
