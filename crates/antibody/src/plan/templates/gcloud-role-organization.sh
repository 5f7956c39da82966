# Exactly the permissions the enabled fixes need, granted at the organization: every project under it.
if gcloud iam roles describe {{ROLE}} --organization {{organization}} >/dev/null 2>&1; then
  gcloud iam roles update {{ROLE}} --organization {{organization}} --permissions "{{permissions}}" --quiet
else
  gcloud iam roles create {{ROLE}} --organization {{organization}} --title "antibody remediator" \
    --permissions "{{permissions}}"
fi
gcloud organizations add-iam-policy-binding {{organization}} --member "serviceAccount:$SA" \
  --role "organizations/{{organization}}/roles/{{ROLE}}" --condition None >/dev/null
