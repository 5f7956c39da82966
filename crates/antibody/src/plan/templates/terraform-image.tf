
variable "source_dir" {
  description = "The antibody repository the image is built from, by Cloud Build"
  type        = string
  default     = "."
}

variable "image_tag" {
  description = "The image's tag: a new tag builds and deploys the source again"
  type        = string
  default     = "latest"
}

resource "google_artifact_registry_repository" "antibody" {
  project       = "{{project}}"
  location      = "{{region}}"
  repository_id = "{{REPOSITORY}}"
  format        = "DOCKER"
  depends_on    = [google_project_service.antibody]
}

locals {
  image = "{{region}}-docker.pkg.dev/{{project}}/{{REPOSITORY}}/antibody:${var.image_tag}"
}

# The image, built once its repository exists, in the same apply (and again when image_tag changes).
resource "terraform_data" "image" {
  triggers_replace = [local.image]

  provisioner "local-exec" {
    command = "gcloud builds submit \"${var.source_dir}\" --tag \"${local.image}\" --project {{project}} --region {{region}}"
  }

  depends_on = [google_artifact_registry_repository.antibody]
}
