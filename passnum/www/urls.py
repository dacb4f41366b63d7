from django.contrib.auth import views as auth_views
from django.urls import path

from passnum.www import views

app_name = "www"

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views.LoginView.as_view(), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("mot-de-passe/oublie/", views.PasswordResetView.as_view(), name="password_reset"),
    path("mot-de-passe/envoye/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "mot-de-passe/nouveau/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("mot-de-passe/change/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("invitation/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("organisation/", views.organisation_switch, name="organisation_switch"),
    path("equipe/", views.members, name="members"),
    path("financeur/dispositifs/", views.program_list, name="program_list"),
    path("financeur/dispositifs/nouveau/", views.program_create_view, name="program_create"),
    path("financeur/dispositifs/<slug:slug>/", views.program_detail, name="program_detail"),
    path("financeur/dispositifs/<slug:slug>/modifier/", views.program_edit_view, name="program_edit"),
]
