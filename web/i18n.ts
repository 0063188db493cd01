import { html, type Html } from './html.js';
import type { FileKind } from './icons.js';

// The words on every page, in every language Ferry speaks. A language is a complete Messages
// object (the type makes a missing string a compile error), picked per request from `?lang=`,
// then Accept-Language, then English. Values from the message (sender, names) arrive as Html or
// strings and are escaped by the html tag like everywhere else.

export const LANGUAGES = ['en', 'de', 'fr', 'es'] as const;
export type Lang = (typeof LANGUAGES)[number];
export const DEFAULT_LANG: Lang = 'en';

export interface Messages {
  /** BCP 47 tag for Intl (dates, numbers) and the html lang attribute. */
  locale: string;
  /** The language's own name, for the language links. */
  name: string;
  languageLabel: string;

  landingTitle(sender: string): string;
  landingHeading(sender: string): Html;
  /** Title and heading when the message had no sender (the null sender of a bounce). */
  landingTitleNoSender: string;
  from: string;
  sent: string;
  subject: string;
  availableUntil: string;
  timeLeft(unit: 'day' | 'hour' | 'minute', n: number): string;
  lessThanAMinute: string;
  filesHeading(count: number, size: string): string;
  download: string;
  /** Accessible name of a file's download link. */
  downloadFile(name: string): string;
  downloadAll: string;
  downloadAllHint(size: string): string;
  size: string;
  type: string;
  kinds: Record<FileKind, string>;
  bytes(exact: string): string;
  copy: string;
  copied: string;
  copyLabel(name: string): string;
  downloadsLeft(left: number, max: number): string;
  limitReachedFile: string;
  zipUnavailableLimit: string;
  noFiles: string;
  expiryNote(when: Html): Html;
  checkNote: string;
  trust(brand: string): string;

  notFoundTitle: string;
  notFoundBody: string;
  notFoundAsk: string;
  goneTitle: string;
  goneExpired(when: Html): Html;
  goneRevoked(when: Html): Html;
  askSender(sender: Html): Html;
  askSenderUnknown: string;
  limitTitle: string;
  limitBody(max: number): string;
  unavailableTitle: string;
  unavailableBody: string;
  errorTitle: string;
  errorBody: string;
  badRequestTitle: string;
  badRequestBody: string;
  tooManyTitle: string;
  tooManyBody(seconds: number): string;
  homeTitle(brand: string): string;
  homeBody: string;
}

const en: Messages = {
  locale: 'en-GB',
  name: 'English',
  languageLabel: 'Language',
  landingTitle: (sender) => `Files from ${sender}`,
  landingHeading: (sender) => html`Files from ${sender}`,
  landingTitleNoSender: 'Files sent to you',
  from: 'From',
  sent: 'Sent',
  subject: 'Subject',
  availableUntil: 'Available until',
  timeLeft: (unit, n) => `${n} ${unit}${n === 1 ? '' : 's'} left`,
  lessThanAMinute: 'less than a minute left',
  filesHeading: (count, size) => `${count === 1 ? '1 file' : `${count} files`}, ${size}`,
  download: 'Download',
  downloadFile: (name) => `Download ${name}`,
  downloadAll: 'Download all (.zip)',
  downloadAllHint: (size) => `All files in one .zip archive, ${size}`,
  size: 'Size',
  type: 'Type',
  kinds: { pdf: 'PDF document', doc: 'Document', sheet: 'Spreadsheet', slides: 'Presentation', image: 'Image', video: 'Video', audio: 'Audio', archive: 'Archive', text: 'Text', other: 'File' },
  bytes: (exact) => `${exact} bytes`,
  copy: 'Copy',
  copied: 'Copied',
  copyLabel: (name) => `Copy the SHA-256 of ${name}`,
  downloadsLeft: (left, max) => `${left} of ${max} downloads left`,
  limitReachedFile: 'Download limit reached',
  zipUnavailableLimit: 'Downloading all files at once is no longer possible because a file has reached its download limit.',
  noFiles: 'This message has no files.',
  expiryNote: (when) => html`The links work until ${when}. Download the files before then; a download that breaks off can be resumed.`,
  checkNote: 'To check that a file arrived intact, compare its SHA-256 with the one shown here.',
  trust: (brand) => `${brand} delivers files that were too large for email, on behalf of the sender. This service never asks you to sign in or for a password.`,
  notFoundTitle: 'Link not found',
  notFoundBody: 'There is nothing at this address. Check that the whole link was copied from the email: long links are sometimes broken across two lines.',
  notFoundAsk: 'If the link is complete, ask the sender to send the files again.',
  goneTitle: 'These files are no longer available',
  goneExpired: (when) => html`These files could be downloaded until ${when}. That time has passed and they have been removed.`,
  goneRevoked: (when) => html`These files were withdrawn before their expiry date (${when}) and can no longer be downloaded.`,
  askSender: (sender) => html`If you still need them, ask the sender, ${sender}, to send them again.`,
  askSenderUnknown: 'If you still need them, ask the sender to send them again.',
  limitTitle: 'Download limit reached',
  limitBody: (max) =>
    `These files have been downloaded as often as allowed (${max === 1 ? 'once' : `${max} times`} each), so they can no longer be downloaded from this link.`,
  unavailableTitle: 'Temporarily unavailable',
  unavailableBody: 'The file service cannot reach its storage right now. Your files are safe; please try again in a few minutes.',
  errorTitle: 'Something went wrong',
  errorBody: 'The file service could not answer this request. Please try again in a few minutes.',
  badRequestTitle: 'Request not understood',
  badRequestBody: 'The file service could not handle this request. Open the link from the email again.',
  tooManyTitle: 'Too many requests',
  tooManyBody: (s) => `Too many requests came from your network in a short time. Please wait ${s === 1 ? 'a second' : `${s} seconds`} and try again.`,
  homeTitle: (brand) => `${brand} file service`,
  homeBody: 'This server delivers files that were sent to you by email. To download them, open the link in that email.',
};

const de: Messages = {
  locale: 'de-DE',
  name: 'Deutsch',
  languageLabel: 'Sprache',
  landingTitle: (sender) => `Dateien von ${sender}`,
  landingHeading: (sender) => html`Dateien von ${sender}`,
  landingTitleNoSender: 'Dateien für Sie',
  from: 'Von',
  sent: 'Gesendet',
  subject: 'Betreff',
  availableUntil: 'Verfügbar bis',
  timeLeft: (unit, n) => {
    const words = { day: ['Tag', 'Tage'], hour: ['Stunde', 'Stunden'], minute: ['Minute', 'Minuten'] }[unit];
    return `noch ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'noch weniger als eine Minute',
  filesHeading: (count, size) => `${count === 1 ? '1 Datei' : `${count} Dateien`}, ${size}`,
  download: 'Herunterladen',
  downloadFile: (name) => `${name} herunterladen`,
  downloadAll: 'Alle herunterladen (.zip)',
  downloadAllHint: (size) => `Alle Dateien in einem .zip-Archiv, ${size}`,
  size: 'Größe',
  type: 'Typ',
  kinds: { pdf: 'PDF-Dokument', doc: 'Dokument', sheet: 'Tabelle', slides: 'Präsentation', image: 'Bild', video: 'Video', audio: 'Audio', archive: 'Archiv', text: 'Text', other: 'Datei' },
  bytes: (exact) => `${exact} Byte`,
  copy: 'Kopieren',
  copied: 'Kopiert',
  copyLabel: (name) => `SHA-256 von ${name} kopieren`,
  downloadsLeft: (left, max) => `noch ${left} von ${max} Downloads`,
  limitReachedFile: 'Download-Limit erreicht',
  zipUnavailableLimit: 'Alle Dateien auf einmal herunterzuladen ist nicht mehr möglich, weil eine Datei ihr Download-Limit erreicht hat.',
  noFiles: 'Diese Nachricht enthält keine Dateien.',
  expiryNote: (when) =>
    html`Die Links funktionieren bis ${when}. Laden Sie die Dateien vorher herunter; ein abgebrochener Download kann fortgesetzt werden.`,
  checkNote: 'Um zu prüfen, ob eine Datei unversehrt angekommen ist, vergleichen Sie ihren SHA-256-Wert mit dem hier angezeigten.',
  trust: (brand) =>
    `${brand} stellt im Auftrag des Absenders Dateien bereit, die für eine E-Mail zu groß waren. Dieser Dienst fragt Sie nie nach einer Anmeldung oder einem Passwort.`,
  notFoundTitle: 'Link nicht gefunden',
  notFoundBody:
    'Unter dieser Adresse gibt es nichts. Prüfen Sie, ob der ganze Link aus der E-Mail kopiert wurde: Lange Links werden manchmal auf zwei Zeilen umgebrochen.',
  notFoundAsk: 'Wenn der Link vollständig ist, bitten Sie den Absender, die Dateien erneut zu senden.',
  goneTitle: 'Diese Dateien sind nicht mehr verfügbar',
  goneExpired: (when) => html`Diese Dateien konnten bis ${when} heruntergeladen werden. Diese Frist ist abgelaufen, und sie wurden entfernt.`,
  goneRevoked: (when) => html`Diese Dateien wurden vor ihrem Ablaufdatum (${when}) zurückgezogen und können nicht mehr heruntergeladen werden.`,
  askSender: (sender) => html`Wenn Sie sie noch brauchen, bitten Sie den Absender, ${sender}, sie erneut zu senden.`,
  askSenderUnknown: 'Wenn Sie sie noch brauchen, bitten Sie den Absender, sie erneut zu senden.',
  limitTitle: 'Download-Limit erreicht',
  limitBody: (max) =>
    `Diese Dateien wurden so oft heruntergeladen wie erlaubt (${max === 1 ? 'einmal' : `${max}-mal`} je Datei) und können über diesen Link nicht mehr heruntergeladen werden.`,
  unavailableTitle: 'Vorübergehend nicht erreichbar',
  unavailableBody: 'Der Dateidienst erreicht seinen Speicher gerade nicht. Ihre Dateien sind sicher; bitte versuchen Sie es in ein paar Minuten erneut.',
  errorTitle: 'Etwas ist schiefgelaufen',
  errorBody: 'Der Dateidienst konnte diese Anfrage nicht beantworten. Bitte versuchen Sie es in ein paar Minuten erneut.',
  badRequestTitle: 'Anfrage nicht verstanden',
  badRequestBody: 'Der Dateidienst konnte diese Anfrage nicht bearbeiten. Öffnen Sie den Link aus der E-Mail erneut.',
  tooManyTitle: 'Zu viele Anfragen',
  tooManyBody: (s) =>
    `Aus Ihrem Netzwerk kamen in kurzer Zeit zu viele Anfragen. Bitte warten Sie ${s === 1 ? 'eine Sekunde' : `${s} Sekunden`} und versuchen Sie es dann erneut.`,
  homeTitle: (brand) => `${brand}-Dateidienst`,
  homeBody: 'Dieser Server stellt Dateien bereit, die Ihnen per E-Mail geschickt wurden. Öffnen Sie zum Herunterladen den Link in dieser E-Mail.',
};

const fr: Messages = {
  locale: 'fr-FR',
  name: 'Français',
  languageLabel: 'Langue',
  landingTitle: (sender) => `Fichiers de ${sender}`,
  landingHeading: (sender) => html`Fichiers de ${sender}`,
  landingTitleNoSender: 'Fichiers qui vous ont été envoyés',
  from: 'De',
  sent: 'Envoyé le',
  subject: 'Objet',
  availableUntil: 'Disponible jusqu’au',
  timeLeft: (unit, n) => {
    const words = { day: ['jour', 'jours'], hour: ['heure', 'heures'], minute: ['minute', 'minutes'] }[unit];
    return `encore ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'moins d’une minute',
  filesHeading: (count, size) => `${count === 1 ? '1 fichier' : `${count} fichiers`}, ${size}`,
  download: 'Télécharger',
  downloadFile: (name) => `Télécharger ${name}`,
  downloadAll: 'Tout télécharger (.zip)',
  downloadAllHint: (size) => `Tous les fichiers dans une archive .zip, ${size}`,
  size: 'Taille',
  type: 'Type',
  kinds: { pdf: 'Document PDF', doc: 'Document', sheet: 'Feuille de calcul', slides: 'Présentation', image: 'Image', video: 'Vidéo', audio: 'Audio', archive: 'Archive', text: 'Texte', other: 'Fichier' },
  bytes: (exact) => `${exact} octets`,
  copy: 'Copier',
  copied: 'Copié',
  copyLabel: (name) => `Copier le SHA-256 de ${name}`,
  downloadsLeft: (left, max) => `${left} téléchargement${left > 1 ? 's' : ''} restant${left > 1 ? 's' : ''} sur ${max}`,
  limitReachedFile: 'Limite de téléchargements atteinte',
  zipUnavailableLimit: 'Il n’est plus possible de tout télécharger d’un coup, car un fichier a atteint sa limite de téléchargements.',
  noFiles: 'Ce message ne contient aucun fichier.',
  expiryNote: (when) =>
    html`Les liens fonctionnent jusqu’au ${when}. Téléchargez les fichiers avant cette date ; un téléchargement interrompu peut être repris.`,
  checkNote: 'Pour vérifier qu’un fichier est arrivé intact, comparez son SHA-256 avec celui affiché ici.',
  trust: (brand) =>
    `${brand} transmet, au nom de l’expéditeur, des fichiers trop volumineux pour un e-mail. Ce service ne vous demande jamais de vous connecter ni de mot de passe.`,
  notFoundTitle: 'Lien introuvable',
  notFoundBody:
    'Il n’y a rien à cette adresse. Vérifiez que le lien a été copié en entier depuis l’e-mail : les liens longs sont parfois coupés sur deux lignes.',
  notFoundAsk: 'Si le lien est complet, demandez à l’expéditeur de renvoyer les fichiers.',
  goneTitle: 'Ces fichiers ne sont plus disponibles',
  goneExpired: (when) => html`Ces fichiers pouvaient être téléchargés jusqu’au ${when}. Ce délai est passé et ils ont été supprimés.`,
  goneRevoked: (when) => html`Ces fichiers ont été retirés avant leur date d’expiration (${when}) et ne peuvent plus être téléchargés.`,
  askSender: (sender) => html`Si vous en avez encore besoin, demandez à l’expéditeur, ${sender}, de vous les renvoyer.`,
  askSenderUnknown: 'Si vous en avez encore besoin, demandez à l’expéditeur de vous les renvoyer.',
  limitTitle: 'Limite de téléchargements atteinte',
  limitBody: (max) =>
    `Ces fichiers ont été téléchargés autant de fois que permis (${max === 1 ? 'une fois' : `${max} fois`} chacun) et ne peuvent plus être téléchargés depuis ce lien.`,
  unavailableTitle: 'Temporairement indisponible',
  unavailableBody: 'Le service de fichiers ne parvient pas à joindre son stockage pour le moment. Vos fichiers sont en sécurité ; réessayez dans quelques minutes.',
  errorTitle: 'Une erreur est survenue',
  errorBody: 'Le service de fichiers n’a pas pu répondre à cette demande. Réessayez dans quelques minutes.',
  badRequestTitle: 'Demande non comprise',
  badRequestBody: 'Le service de fichiers n’a pas pu traiter cette demande. Ouvrez à nouveau le lien de l’e-mail.',
  tooManyTitle: 'Trop de demandes',
  tooManyBody: (s) =>
    `Trop de demandes sont venues de votre réseau en peu de temps. Attendez ${s === 1 ? 'une seconde' : `${s} secondes`}, puis réessayez.`,
  homeTitle: (brand) => `Service de fichiers ${brand}`,
  homeBody: 'Ce serveur transmet des fichiers qui vous ont été envoyés par e-mail. Pour les télécharger, ouvrez le lien contenu dans cet e-mail.',
};

const es: Messages = {
  locale: 'es-ES',
  name: 'Español',
  languageLabel: 'Idioma',
  landingTitle: (sender) => `Archivos de ${sender}`,
  landingHeading: (sender) => html`Archivos de ${sender}`,
  landingTitleNoSender: 'Archivos enviados para usted',
  from: 'De',
  sent: 'Enviado',
  subject: 'Asunto',
  availableUntil: 'Disponible hasta',
  timeLeft: (unit, n) => {
    const words = { day: ['día', 'días'], hour: ['hora', 'horas'], minute: ['minuto', 'minutos'] }[unit];
    return `${n === 1 ? 'queda' : 'quedan'} ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'queda menos de un minuto',
  filesHeading: (count, size) => `${count === 1 ? '1 archivo' : `${count} archivos`}, ${size}`,
  download: 'Descargar',
  downloadFile: (name) => `Descargar ${name}`,
  downloadAll: 'Descargar todo (.zip)',
  downloadAllHint: (size) => `Todos los archivos en un único .zip, ${size}`,
  size: 'Tamaño',
  type: 'Tipo',
  kinds: { pdf: 'Documento PDF', doc: 'Documento', sheet: 'Hoja de cálculo', slides: 'Presentación', image: 'Imagen', video: 'Vídeo', audio: 'Audio', archive: 'Archivo comprimido', text: 'Texto', other: 'Archivo' },
  bytes: (exact) => `${exact} bytes`,
  copy: 'Copiar',
  copied: 'Copiado',
  copyLabel: (name) => `Copiar el SHA-256 de ${name}`,
  downloadsLeft: (left, max) => `${left === 1 ? 'queda' : 'quedan'} ${left} de ${max} descargas`,
  limitReachedFile: 'Límite de descargas alcanzado',
  zipUnavailableLimit: 'Ya no es posible descargar todos los archivos a la vez porque un archivo ha alcanzado su límite de descargas.',
  noFiles: 'Este mensaje no tiene archivos.',
  expiryNote: (when) =>
    html`Los enlaces funcionan hasta el ${when}. Descargue los archivos antes; una descarga interrumpida se puede reanudar.`,
  checkNote: 'Para comprobar que un archivo llegó intacto, compare su SHA-256 con el que se muestra aquí.',
  trust: (brand) =>
    `${brand} entrega, en nombre del remitente, archivos demasiado grandes para el correo electrónico. Este servicio nunca le pide iniciar sesión ni una contraseña.`,
  notFoundTitle: 'Enlace no encontrado',
  notFoundBody:
    'No hay nada en esta dirección. Compruebe que ha copiado el enlace completo del correo: los enlaces largos a veces se parten en dos líneas.',
  notFoundAsk: 'Si el enlace está completo, pida al remitente que vuelva a enviar los archivos.',
  goneTitle: 'Estos archivos ya no están disponibles',
  goneExpired: (when) => html`Estos archivos se podían descargar hasta el ${when}. Ese plazo ha pasado y se han eliminado.`,
  goneRevoked: (when) => html`Estos archivos se retiraron antes de su fecha de caducidad (${when}) y ya no se pueden descargar.`,
  askSender: (sender) => html`Si todavía los necesita, pida al remitente, ${sender}, que se los vuelva a enviar.`,
  askSenderUnknown: 'Si todavía los necesita, pida al remitente que se los vuelva a enviar.',
  limitTitle: 'Límite de descargas alcanzado',
  limitBody: (max) =>
    `Estos archivos se han descargado tantas veces como se permite (${max === 1 ? 'una vez' : `${max} veces`} cada uno) y ya no se pueden descargar desde este enlace.`,
  unavailableTitle: 'No disponible temporalmente',
  unavailableBody: 'El servicio de archivos no puede acceder a su almacenamiento en este momento. Sus archivos están a salvo; vuelva a intentarlo en unos minutos.',
  errorTitle: 'Algo salió mal',
  errorBody: 'El servicio de archivos no pudo responder a esta solicitud. Vuelva a intentarlo en unos minutos.',
  badRequestTitle: 'Solicitud no comprendida',
  badRequestBody: 'El servicio de archivos no pudo atender esta solicitud. Abra de nuevo el enlace del correo.',
  tooManyTitle: 'Demasiadas solicitudes',
  tooManyBody: (s) =>
    `Llegaron demasiadas solicitudes desde su red en poco tiempo. Espere ${s === 1 ? 'un segundo' : `${s} segundos`} y vuelva a intentarlo.`,
  homeTitle: (brand) => `Servicio de archivos ${brand}`,
  homeBody: 'Este servidor entrega archivos que le enviaron por correo electrónico. Para descargarlos, abra el enlace de ese correo.',
};

export const MESSAGES: Record<Lang, Messages> = { en, de, fr, es };

function isLang(s: string): s is Lang {
  return (LANGUAGES as readonly string[]).includes(s);
}

/**
 * `?lang=` wins when it names a language Ferry has; then the best Accept-Language match by
 * q-value (a regional tag such as de-AT matches de); then English.
 */
export function pickLanguage(query: unknown, acceptLanguage: string | undefined): Lang {
  const q = typeof query === 'string' ? query.trim().toLowerCase() : undefined;
  if (q && isLang(q)) return q;
  if (!acceptLanguage) return DEFAULT_LANG;
  const ranked = acceptLanguage
    .slice(0, 500)
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const qp = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find(Boolean);
      const weight = qp === undefined ? 1 : Number(qp);
      return { primary: tag.trim().toLowerCase().split('-')[0] ?? '', weight: Number.isFinite(weight) ? weight : 0, i };
    })
    .filter((r) => r.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.i - b.i);
  for (const r of ranked) if (isLang(r.primary)) return r.primary;
  return DEFAULT_LANG;
}
