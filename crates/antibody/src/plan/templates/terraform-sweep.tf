
# Sweeps of {{projects}}: Cloud Scheduler calls /sweep ({{schedule}}), signed as the service account and verified like
# a push, so no instance has to stay up for a timer.
resource "google_cloud_scheduler_job" "antibody_sweep" {
  project          = "{{project}}"
  region           = "{{region}}"
  name             = "antibody-sweep"
  schedule         = "{{schedule}}"
  attempt_deadline = "1800s"

  http_target {
    http_method = "POST"
    uri         = "${var.push_audience}/sweep"
    oidc_token {
      service_account_email = google_service_account.antibody.email
      audience              = var.push_audience
    }
  }
}
