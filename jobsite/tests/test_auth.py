import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PROTECTED = ["/jobs/", "/imports/", "/admin/"]


@pytest.mark.parametrize("url", ["/jobs/", "/imports/"])
def test_anonymous_is_sent_to_login(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_anonymous_admin_is_sent_to_admin_login(client) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_root_is_the_dashboard_behind_the_login(client) -> None:
    assert client.get("/")["Location"] == "/login/?next=/"


def test_login_page_renders_and_logs_in(client, editor) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "editor", "password": "pw-editor"})
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200


def test_wrong_password_shows_error(client, editor) -> None:
    response = client.post(reverse("login"), {"username": "editor", "password": "nope"})
    assert response.status_code == 200 and b"Please enter a correct username" in response.content


def test_logged_in_without_permission_gets_403(client_for, outsider) -> None:
    client = client_for(outsider)
    assert client.get("/jobs/").status_code == 403
    assert client.get("/imports/").status_code == 403


def test_logout_is_a_post(client_for, editor) -> None:
    client = client_for(editor)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/jobs/").status_code == 302


def test_base_template_has_htmx_and_csrf_header(client_for, editor) -> None:
    client = client_for(editor)
    html = client.get("/jobs/").content.decode()
    assert "htmx" in html and 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'href="/imports/"' in html and "/admin/" not in html  # editor is not staff
