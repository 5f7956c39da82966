
# The configuration this deployment was planned from, where the service reads it: the secret {{CONFIG_SECRET}},
# mounted as {{CONFIG_PATH}} (ANTIBODY_CONFIG). A changed file becomes the secret's next version on the next run.
CONFIG_FILE="${ANTIBODY_CONFIG_FILE:-{{file}}}"
gcloud secrets describe {{CONFIG_SECRET}} --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud secrets create {{CONFIG_SECRET}} --project "$PROJECT" --replication-policy automatic
if ! gcloud secrets versions access latest --secret {{CONFIG_SECRET}} --project "$PROJECT" 2>/dev/null |
  cmp -s - "$CONFIG_FILE"; then
  gcloud secrets versions add {{CONFIG_SECRET}} --project "$PROJECT" --data-file "$CONFIG_FILE"
fi
gcloud secrets add-iam-policy-binding {{CONFIG_SECRET}} --project "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/secretmanager.secretAccessor >/dev/null
