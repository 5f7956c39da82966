
resource "google_eventarc_trigger" "{{resource}}" {
  project         = "{{project}}"
  name            = "{{name}}"
  location        = "global"
  service_account = google_service_account.antibody.email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.audit.log.v1.written"
  }
  matching_criteria {
    attribute = "serviceName"
    value     = "{{service}}"
  }
  matching_criteria {
    attribute = "methodName"
    value     = "{{method}}"
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.antibody.name
      region  = "{{region}}"
    }
  }
}
