# The image, built from this repository by Cloud Build into an Artifact Registry repository (`antibody plan --image`
# deploys one built elsewhere instead). Run this script from the repository's root, or set ANTIBODY_SOURCE to it.
SOURCE="${ANTIBODY_SOURCE:-.}"
gcloud artifacts repositories describe {{REPOSITORY}} --location "$REGION" --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud artifacts repositories create {{REPOSITORY}} --repository-format docker --location "$REGION" \
    --project "$PROJECT"
IMAGE="$REGION-docker.pkg.dev/$PROJECT/{{REPOSITORY}}/antibody:$(git -C "$SOURCE" rev-parse --short=12 HEAD 2>/dev/null || date +%Y%m%d%H%M%S)"
gcloud builds submit "$SOURCE" --tag "$IMAGE" --project "$PROJECT" --region "$REGION"
