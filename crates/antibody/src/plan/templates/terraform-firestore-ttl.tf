
# Documents of {{collection}} are deleted once their expireAt has passed (journal rows {{days}} days after they are
# written, a stopped replica's heartbeat a day after it stopped).
resource "google_firestore_field" "antibody_ttl_{{collection}}" {
  project    = "{{project}}"
  database   = google_firestore_database.antibody.name
  collection = "{{collection}}"
  field      = "expireAt"
  ttl_config {}
}
