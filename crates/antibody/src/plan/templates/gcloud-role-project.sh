# Exactly the permissions the enabled fixes need.
if gcloud iam roles describe {{ROLE}} --project "$PROJECT" >/dev/null 2>&1; then
  gcloud iam roles update {{ROLE}} --project "$PROJECT" --permissions "{{permissions}}" --quiet
else
  gcloud iam roles create {{ROLE}} --project "$PROJECT" --title "antibody remediator" --permissions "{{permissions}}"
fi
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role "projects/$PROJECT/roles/{{ROLE}}" --condition None >/dev/null
