
# Sweeps of {{projects}}: Cloud Scheduler calls /sweep ({{schedule}}), signed as the service account and verified like
# a push, so no instance has to stay up for a timer (the service has none: ANTIBODY_CPU=request).
resource "google_cloud_scheduler_job" "antibody_sweep" {
  project          = "{{project}}"
  region           = "{{region}}"
  name             = "antibody-sweep"
  schedule         = "{{schedule}}"
  attempt_deadline = "{{deadline}}s"

  http_target {
    http_method = "POST"
    uri         = "${local.url}/sweep"
    oidc_token {
      service_account_email = google_service_account.antibody.email
      audience              = local.url
    }
  }
}
