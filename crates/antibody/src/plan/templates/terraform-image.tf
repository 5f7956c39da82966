
variable "image" {
  description = "The antibody image, built from the repository: gcloud builds submit --tag {{region}}-docker.pkg.dev/{{project}}/{{REPOSITORY}}/antibody:TAG"
  type        = string
}

resource "google_artifact_registry_repository" "antibody" {
  project       = "{{project}}"
  location      = "{{region}}"
  repository_id = "{{REPOSITORY}}"
  format        = "DOCKER"
}
